"""What every part of the dashboard shares: the daemon it serves, JSON answers, API errors,
the audit helper, and the beds-with-alerts view (worst bed first)."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from typing import Any

import orjson
from aiohttp import web

log = logging.getLogger("crswatch.dashboard")


class ApiError(Exception):
    """Raised by a handler; the error middleware answers it in the one error shape."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


async def body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 in the error shape."""
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as e:
        raise ApiError(400, "bad_json", f"the body is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data


class Dashboard:
    """The dashboard's view of the daemon. Alerts and audit may not exist (yet): every use
    goes through `alerts` and `audit`, which degrade to nothing."""

    def __init__(self, daemon):
        self.daemon = daemon
        self._db: sqlite3.Connection | None = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.unknown_failures: dict[str, tuple[int, float]] = {}  # login lock-out
        self._pending: set[asyncio.Future] = set()

    @property
    def db(self) -> sqlite3.Connection:
        """A reader connection for short point queries (sessions, users) on the loop
        thread; WAL never makes it wait for the writer."""
        if self._db is None:
            self._db = self.daemon.store.reader()
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def now(self) -> float:
        return self.daemon.clock()

    def wall_now(self) -> float:
        """The wall clock under the daemon's clock, for sessions and lock-outs: a login
        lasts a shift of real time even when the daemon's clock is simulated (the demo's
        SimClock runs 120x and keeps its wall clock as `.wall`); otherwise the daemon's."""
        clock = self.daemon.clock
        wall = getattr(clock, "wall", None)
        return wall() if callable(wall) else clock()

    @property
    def alerts(self):
        return getattr(self.daemon, "alerts", None)

    async def audit(
        self, name: str, actor: str, detail: dict[str, Any], alert_id: str | None = None
    ) -> None:
        """Append to the daemon's audit chain; nothing when the daemon has none yet. An
        audit failure is logged, never shown to the nurse as a failed action."""
        fn = getattr(self.daemon, "audit", None)
        if fn is None:
            return
        try:
            await fn(name, actor, detail, alert_id=alert_id)
        except Exception:
            log.exception("audit %s by %s failed", name, actor)

    def audit_later(self, name: str, actor: str, detail: dict[str, Any]) -> None:
        """Audit without waiting for the commit (when the store is what is failing)."""
        task = asyncio.ensure_future(self.audit(name, actor, detail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def active_alerts(
        self, ward: str | None = None, receiver: str | None = None
    ) -> list[dict[str, Any]]:
        alerts = self.alerts
        if alerts is None:
            return []
        return list(alerts.active(ward=ward, receiver=receiver))

    def beds(self, ward: str | None = None) -> list[dict[str, Any]]:
        """States of the admitted beds, each with its active alerts, worst first."""
        by_bed: dict[tuple[str, str], list[dict]] = {}
        for a in self.active_alerts(ward):
            by_bed.setdefault((a.get("ward"), a.get("bed")), []).append(a)
        out = []
        for state in self.daemon.ward.states(ward):
            if state.get("patient_id") is None:
                continue
            alerts = by_bed.get((state["ward"], state["bed"]), [])
            alerts.sort(key=lambda a: (-(a.get("tier") or 0), a.get("raised_ts") or 0))
            out.append({**state, "alerts": alerts})
        out.sort(key=severity_key)
        return out

    def snapshot(self, resync: bool = False) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "resync": resync,
            "ts": self.now(),
            "beds": self.beds(),
            "alerts": self.active_alerts(),
        }


def _natural(text: str) -> tuple:
    """b2 before b10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text or ""))


def grade_rank(grade: int | None, at_least: int | None) -> float:
    """A decided grade; an undecided one just below the grade it is at least."""
    if grade is not None:
        return float(grade)
    if at_least is not None:
        return at_least - 0.5
    return -1.0


def severity_key(bed: dict[str, Any]) -> tuple:
    """Worst first: the highest tier of an active alert, then the CRS grade (or the grade
    it is at least), then NEWS2, then ward and bed."""
    tier = max(
        (a.get("tier") or 0 for a in bed.get("alerts", ()) if a.get("state") != "resolved"),
        default=0,
    )
    crs = grade_rank(bed.get("crs_grade"), bed.get("crs_at_least"))
    news2 = (bed.get("news2") or {}).get("total")
    return (
        -tier,
        -crs,
        -(news2 if news2 is not None else -1),
        _natural(bed.get("ward", "")),
        _natural(bed.get("bed", "")),
    )


DASH = web.AppKey("dashboard", Dashboard)


def dash(request: web.Request) -> Dashboard:
    return request.app[DASH]
