"""Alerts over HTTP: list, one alert with its events, acknowledge, snooze, resolve.

Active alerts come from the daemon's alert engine (through the DashboardPort); older ones
from the `alerts` table (monitor/store/reads.py). A tier-3 alert is resolved by hand by a
physician only, with a reason (alerts/engine.py); a nurse's attempt is 403 `forbidden`,
audited.
"""

from __future__ import annotations

import math

from aiohttp import web

from monitor.store.reads import alert_event_rows, alert_record, stored_alerts

from .auth import require
from .core import ApiError, body, dash, json

STATES = ("active", "acknowledged", "snoozed", "resolved", "all")
MAX_SNOOZE_S = 4 * 3600
_INTERNAL = ("v", "below", "below_since", "quiet_noted", "note", "stage_ts", "notified_ts")


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in _INTERNAL}


def _told(alert: dict, receiver: str | None) -> bool:
    return receiver is None or receiver in (alert.get("told") or ())


async def list_alerts(request: web.Request) -> web.Response:
    q = request.query
    state = q.get("state", "active")
    if state not in STATES:
        raise ApiError(400, "bad_request", f"state must be one of {', '.join(STATES)}")
    ward, receiver = q.get("ward") or None, q.get("receiver") or None
    try:
        limit = max(1, min(int(q.get("limit", "200")), 1000))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a whole number") from None
    d = dash(request)
    if state == "active":
        found = d.active_alerts(ward=ward, receiver=receiver)
        found.sort(key=lambda a: (-(a.get("tier") or 0), a.get("raised_ts") or 0))
        return json(found[:limit])
    found = [_public(a) for a in stored_alerts(d.db, state, ward, limit) if _told(a, receiver)]
    return json(found)


def find(request: web.Request, alert_id: str) -> dict:
    d = dash(request)
    alert = d.port.alert(alert_id)
    if alert is None:
        stored = alert_record(d.db, alert_id)
        if stored is None:
            raise ApiError(404, "not_found", f"no alert {alert_id!r}")
        alert = _public(stored)
    return {**alert, "events": alert_event_rows(d.db, alert_id)}


async def get_alert(request: web.Request) -> web.Response:
    return json(find(request, request.match_info["id"]))


async def _act(request: web.Request, action: str, *args) -> web.Response:
    user = require(request, "ack")
    d = dash(request)
    alert_id = request.match_info["id"]
    port = d.port
    try:
        if action == "ack":
            result = await port.ack(alert_id, user.name)
        elif action == "snooze":
            result = await port.snooze(alert_id, user.name, *args)
        else:
            result = await port.resolve(alert_id, user.name, *args, role=user.role)
    except KeyError:
        raise ApiError(404, "not_found", f"no active alert {alert_id!r}") from None
    except PermissionError as e:
        await d.audit(
            f"alert.{action}_refused", user.name, {"role": user.role, "reason": str(e)}, alert_id
        )
        raise ApiError(403, "forbidden", str(e)) from None
    except ValueError as e:
        raise ApiError(409, "not_allowed", str(e)) from None
    # the engine audits the decision itself, with the user as its actor
    return json(result)


async def ack(request: web.Request) -> web.Response:
    return await _act(request, "ack")


async def snooze(request: web.Request) -> web.Response:
    seconds = (await body(request)).get("seconds")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 < seconds <= MAX_SNOOZE_S
    ):
        raise ApiError(
            422, "invalid", f"seconds must be a number above 0 and at most {MAX_SNOOZE_S}"
        )
    return await _act(request, "snooze", seconds)


async def resolve(request: web.Request) -> web.Response:
    note = (await body(request)).get("note")
    if not isinstance(note, str) or not note.strip():
        raise ApiError(422, "invalid", "a note saying why the alert is resolved is required")
    return await _act(request, "resolve", note.strip()[:2000])


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/alerts", list_alerts)
    router.add_get("/api/alerts/{id}", get_alert)
    router.add_post("/api/alerts/{id}/ack", ack)
    router.add_post("/api/alerts/{id}/snooze", snooze)
    router.add_post("/api/alerts/{id}/resolve", resolve)
