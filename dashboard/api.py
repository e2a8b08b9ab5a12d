"""The JSON API of the ward: wards, beds, a patient's history, care events, grade overrides.

Alerts are in alerts_api.py, accounts in users_api.py. Every error is raised as ApiError
(or an aiohttp HTTP exception) and answered in the one error shape by errors.py.
"""

from __future__ import annotations

import asyncio
import math

import orjson
from aiohttp import web

from monitor.clinical import thresholds
from monitor.clinical.news2 import HR_CUTS, RR_CUTS
from monitor.clinical.thresholds import NAME
from monitor.clock import iso
from monitor.store.writes import insert_override

from .auth import require
from .core import ApiError, body, dash, json

SUBMIT_TIMEOUT_S = 15.0
SCALES = {"crs": 4, "icans": 4}  # scale -> highest grade
VIEW_AUDIT_S = 60.0


async def wards(request: web.Request) -> web.Response:
    states = dash(request).port.beds()
    return json(sorted({s["ward"] for s in states if s.get("patient_id")}))


async def beds(request: web.Request) -> web.Response:
    ward = request.query.get("ward") or None
    if ward is not None and not NAME.match(ward):
        raise ApiError(400, "bad_request", "ward must be 1-32 of A-Z a-z 0-9 _ -")
    return json(dash(request).beds(ward))


async def patient(request: web.Request) -> web.Response:
    user = require(request, "view")
    pid = request.match_info["id"]
    d = dash(request)
    history = await asyncio.to_thread(d.port.patient_history, pid)
    if history is None:
        raise ApiError(404, "not_found", f"no patient {pid!r} is known")
    _audit_view(d, user.name, pid, request.remote)
    history["current"] = d.port.state_of(pid)
    return json(history)


def _audit_view(d, username: str, pid: str, source: str | None) -> None:
    """A read of a patient's record is audited, once per user and patient per
    VIEW_AUDIT_S (a page reloading its data is one view, not a row per request)."""
    now = d.now()
    key = (username, pid)
    if now - d.viewed.get(key, float("-inf")) < VIEW_AUDIT_S:
        return
    if len(d.viewed) > 10_000:
        d.viewed.clear()
    d.viewed[key] = now
    d.audit_later("patient.viewed", username, {"patient_id": pid, "source": source})


async def care(request: web.Request) -> web.Response:
    """A care event exactly as the MQTT care payload (SPEC.md), entered at a bed; stored
    and graded through the daemon's own path. `?patient_id=` guards a form opened before
    the bed changed hands."""
    user = require(request, "care")
    ward, bed = request.match_info["ward"], request.match_info["bed"]
    data = await body(request)
    d = dash(request)
    rec = d.port.admission_in(ward, bed)
    expected = request.query.get("patient_id")
    if expected and (rec is None or rec.patient_id != expected):
        raise ApiError(
            409, "bed_changed", f"patient {expected} is no longer in {ward}/{bed}; reload the page"
        )
    if data.get("ts") is None:
        data["ts"] = d.now()
    work = asyncio.ensure_future(d.port.submit_care(ward, bed, orjson.dumps(data)))
    try:
        item = await asyncio.wait_for(asyncio.shield(work), SUBMIT_TIMEOUT_S)
    except TimeoutError:
        d.audit_later("care.queued", user.name, {"ward": ward, "bed": bed, "event": data})
        return json(
            {
                "stored": False,
                "queued": True,
                "message": "the database is busy: the entry is queued and will be "
                "stored as soon as it can be",
            },
            status=202,
        )
    if item.kind == "reject":
        await d.audit("care.rejected", user.name, {"ward": ward, "bed": bed, "reason": item.reason})
        raise ApiError(422, "rejected", item.reason)
    ev = item.body
    detail = {
        "ward": ward,
        "bed": bed,
        "patient_id": item.record.patient_id,
        "ts": iso(ev.ts),
        "type": ev.type,
        "data": ev.data,
        "duplicate": item.kind == "duplicate",
    }
    await d.audit("care.entered", user.name, detail)
    return json(
        {"stored": item.kind == "care", **detail}, status=201 if item.kind == "care" else 200
    )


async def override(request: web.Request) -> web.Response:
    """A physician confirms or overrides a CRS or ICANS grade, with a reason."""
    user = require(request, "override")
    pid = request.match_info["id"]
    data = await body(request)
    scale, grade, reason = data.get("scale"), data.get("grade"), data.get("reason")
    if not isinstance(scale, str) or scale not in SCALES:
        raise ApiError(422, "invalid", "scale must be 'crs' or 'icans'")
    if (
        isinstance(grade, bool)
        or not isinstance(grade, int | float)
        or not math.isfinite(grade)
        or grade != int(grade)
        or not 0 <= grade <= SCALES[scale]
    ):
        raise ApiError(422, "invalid", f"grade must be a whole number 0-{SCALES[scale]}")
    if not isinstance(reason, str) or not reason.strip():
        raise ApiError(422, "invalid", "a reason is required")
    if len(reason) > 2000:
        raise ApiError(422, "invalid", "the reason is longer than 2000 characters")
    d = dash(request)
    found = d.port.admission_of(pid)
    if found is None:
        raise ApiError(404, "not_found", f"no patient {pid!r} is known")
    adm_id, ward, bed = found
    state = d.port.state_of(pid) or {}
    computed = state.get(f"{scale}_grade")
    row = {
        "admission_id": adm_id,
        "ward": ward,
        "bed": bed,
        "patient_id": pid,
        "ts": d.now(),
        "username": user.name,
        "scale": scale,
        "grade": int(grade),
        "reason": reason.strip(),
    }

    row["id"] = await d.port.write(insert_override, row)
    row["action"] = "confirm" if computed == row["grade"] else "override"
    row["computed_grade"] = computed
    await d.audit(
        f"grade.{row['action']}",
        user.name,
        {
            k: row[k]
            for k in ("patient_id", "ward", "bed", "scale", "grade", "computed_grade", "reason")
        },
    )
    d.port.publish(
        {"type": "override", "ward": ward, "bed": bed, "patient_id": pid, "override": row}
    )
    return json(row, status=201)


async def meta(request: web.Request) -> web.Response:
    """The clinical thresholds and vocabularies the pages show (declared once, in
    monitor/clinical/thresholds.py; NEWS2's 3-point rates from its table)."""
    settings = dash(request).port.alert_settings()
    return json(
        {
            **thresholds.meta(),
            "news2_hr_3_above": HR_CUTS[-2][0],
            "news2_rr_3_above": RR_CUTS[-2][0],
            "risk_threshold": settings.risk_threshold,
        }
    )


async def forecast(request: web.Request) -> web.Response:
    """The forecast's model and its quality on this ward (delayed progressive validation:
    each prediction scored when its 12 h label arrived)."""
    return json(dash(request).port.forecast_summary())


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/meta", meta)
    router.add_get("/api/forecast", forecast)
    router.add_get("/api/wards", wards)
    router.add_get("/api/beds", beds)
    router.add_get("/api/patients/{id}", patient)
    router.add_post("/api/beds/{ward}/{bed}/care", care)
    router.add_post("/api/patients/{id}/override", override)
