"""What every part of the dashboard shares: the daemon it serves, JSON answers, API errors,
the audit helper, and the beds-with-alerts view (worst bed first)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

from monitor.port import DashboardPort

from .guard.refusals import Refusals
from .guard.throttle import Gate

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
    """The dashboard's view of the daemon (a DashboardPort: monitor/port.py), and what it
    keeps in memory: the live pages (`sockets`: each with its user, closed at once when
    that session or account ends), when each session was last used (idle timeout), the
    login gate and the refusals."""

    def __init__(self, port: DashboardPort):
        cfg = port.cfg
        self.port = port
        self._db: sqlite3.Connection | None = None
        self.sockets: dict[web.WebSocketResponse, Any] = {}  # -> its User
        self.unknown_failures: dict[str, tuple[int, float]] = {}  # login lock-out
        self._pending: set[asyncio.Future] = set()
        self.session_max_s = cfg["http.session_max_s"]
        self.session_idle_s = cfg["http.session_idle_s"]
        self.public_url = cfg["http.public_url"].rstrip("/")
        self.last_seen: dict[str, float] = {}  # token hash -> when last used
        self.started = port.wall_now()
        self.gate = Gate(cfg["http.login_workers"], cfg["http.login_queue"])
        self.refusals = Refusals()
        self.viewed: dict[tuple[str, str], float] = {}  # (user, patient) -> audited at
        self.background: list[asyncio.Task] = []

    @property
    def db(self) -> sqlite3.Connection:
        """A reader connection for short point queries (sessions, users) on the loop
        thread; WAL never makes it wait for the writer."""
        if self._db is None:
            self._db = self.port.open_reader()
        return self._db

    def close(self) -> None:
        self.gate.close()
        if self._db is not None:
            self._db.close()
            self._db = None

    def now(self) -> float:
        return self.port.now()

    def wall_now(self) -> float:
        """The wall clock under the daemon's clock, for sessions, lock-outs and the login
        throttle: a login lasts a shift of real time even when the daemon's clock is
        simulated (the demo's SimClock runs 120x); otherwise the daemon's clock."""
        return self.port.wall_now()

    async def audit(
        self, name: str, actor: str, detail: dict[str, Any], alert_id: str | None = None
    ) -> None:
        """Append to the daemon's audit chain. An audit failure is logged, never shown to
        the nurse as a failed action."""
        try:
            await self.port.audit(name, actor, detail, alert_id)
        except Exception:
            log.exception("audit %s by %s failed", name, actor)

    def audit_later(self, name: str, actor: str, detail: dict[str, Any]) -> None:
        """Audit without waiting for the commit (when the store is what is failing)."""
        task = asyncio.ensure_future(self.audit(name, actor, detail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def refused(self, request: web.Request, kind: str, name: str | None = None) -> None:
        """Count a refused request for the per-minute summary (guard/refusals.py)."""
        self.refusals.count(self.wall_now(), request.remote or "?", kind, name, request.path)

    def prune_sessions(self) -> None:
        """Forget when sessions idle past the timeout were last used (they are over)."""
        now = self.wall_now()
        for th in [t for t, seen in self.last_seen.items() if now - seen > self.session_idle_s]:
            del self.last_seen[th]

    async def flush_refusals(self, everything: bool = False) -> None:
        for summary in self.refusals.take(self.wall_now(), everything):
            await self.audit("security.refused", "anonymous", summary)

    async def end_sessions(
        self, username: str | None = None, token_hash: str | None = None, why: str = ""
    ) -> int:
        """Close the live pages of a session (token_hash) or of every session of a user,
        at once; the sessions themselves are deleted by the caller."""
        closing = [
            ws
            for ws, user in self.sockets.items()
            if (token_hash is not None and user.token_hash == token_hash)
            or (username is not None and user.name == username)
        ]
        for ws in closing:
            self.sockets.pop(ws, None)
            with contextlib.suppress(Exception):
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=why.encode()[:120])
        if token_hash is not None:
            self.last_seen.pop(token_hash, None)
        return len(closing)

    def active_alerts(
        self, ward: str | None = None, receiver: str | None = None
    ) -> list[dict[str, Any]]:
        return self.port.active_alerts(ward, receiver)

    def beds(self, ward: str | None = None) -> list[dict[str, Any]]:
        """States of the admitted beds, each with its active alerts, worst first."""
        by_bed: dict[tuple[str, str], list[dict]] = {}
        for a in self.active_alerts(ward):
            by_bed.setdefault((a.get("ward"), a.get("bed")), []).append(a)
        out = []
        for state in self.port.beds(ward):
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
