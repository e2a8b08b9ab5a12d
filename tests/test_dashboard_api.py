"""The ward's JSON API against a real daemon: beds, patients, care entry (stored and graded
like an MQTT care message, refused with its reason), grade overrides, alerts and actions."""

from __future__ import annotations

import time

import aiohttp
import orjson

from dashboard.core import severity_key
from tests.conftest import wait_for
from tests.support.dashboard import Client, admit, is_error, url
from tests.support.db import count, query

NORMAL = {"hr": 80, "rr": 14, "spo2": 97, "sbp": 122, "dbp": 76, "map": 91, "acvpu": "A"}
SICK = {
    "hr": 135,
    "rr": 27,
    "spo2": 89,
    "sbp": 86,
    "dbp": 50,
    "map": 62,
    "temp_c": 39.4,
    "acvpu": "A",
}  # NEWS2 far above 7: a tier-3 emergency


async def beds_with(c: Client, n: int, what: str = "beds", graded=lambda beds: True):
    """The ward once n beds are admitted and `graded(beds)` holds (readings are graded
    on the daemon's next state publication, not the instant they are stored)."""

    async def ready():
        status, beds = await c.get("/api/beds")
        return beds if status == 200 and len(beds) == n and graded(beds) else None

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        beds = await ready()
        if beds is not None:
            return beds
        await _sleep()
    raise AssertionError(f"timed out waiting for {what}")


async def _sleep():
    import asyncio

    await asyncio.sleep(0.05)


async def test_wards_beds_and_patient_history(make_daemon, publisher):
    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        await admit(publisher, p, "w1", "b1", "P1", now)
        await admit(publisher, p, "w1", "b2", "P2", now)
        await admit(publisher, p, "w2", "b1", "P3", now)
        await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, **NORMAL, "temp_c": 37.0})
        await publisher(f"{p}/w1/b2/vitals", {"ts": now - 5, **NORMAL, "temp_c": 39.2})
        beds = await beds_with(
            c,
            3,
            graded=lambda beds: all(
                b["vitals"].get("temp_c", {}).get("value") for b in beds if b["ward"] == "w1"
            ),
        )
        assert await c.get("/api/wards") == (200, ["w1", "w2"])
        status, w1 = await c.get("/api/beds?ward=w1")
        assert status == 200 and {b["bed"] for b in w1} == {"b1", "b2"}
        assert all("alerts" in b and "vitals" in b for b in beds)
        assert beds == sorted(beds, key=severity_key)  # worst first
        fever = next(b for b in w1 if b["bed"] == "b2")
        assert fever["crs_grade"] == 1 and fever["day"] == "D+2"
        assert [b["bed"] for b in w1][0] == "b2"  # the fever comes first
        status, history = await c.get("/api/patients/P2")
        assert status == 200 and history["patient_id"] == "P2"
        assert history["observations"][-1]["temp_c"] == 39.2
        assert history["current"]["bed"] == "b2"
        status, body = await c.get("/api/beds?ward=../etc")
        assert status == 400 and is_error(body)
    finally:
        await c.close()


def test_severity_key_orders_tier_then_crs_then_news2():
    def bed(name, tier=0, crs=None, at_least=None, news2=None):
        return {
            "ward": "w",
            "bed": name,
            "crs_grade": crs,
            "crs_at_least": at_least,
            "news2": {"total": news2} if news2 is not None else None,
            "alerts": [{"tier": tier, "state": "active"}] if tier else [],
        }

    beds = [
        bed("b1", news2=3),
        bed("b2", crs=1, news2=1),
        bed("b10", tier=3),
        bed("b3", crs=None, at_least=2),
        bed("b4", crs=2),
        bed("b5", news2=3),
        bed("b6", tier=2, crs=0),
    ]
    order = [b["bed"] for b in sorted(beds, key=severity_key)]
    assert order == ["b10", "b6", "b4", "b3", "b2", "b1", "b5"]


async def test_care_event_entry_is_stored_and_graded_or_refused(make_daemon, publisher):
    d = await make_daemon()
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        await admit(publisher, p, "w1", "b1", "P1", now)
        await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, **NORMAL, "temp_c": 38.6})
        await beds_with(c, 1)
        status, body = await c.post(
            "/api/beds/w1/b1/care?patient_id=P1",
            {"type": "oxygen", "device": "nasal_cannula", "flow_lpm": 3},
        )
        assert status == 201, body
        assert body["stored"] is True and body["patient_id"] == "P1"
        rows = query(db, "SELECT patient_id, type, data FROM care_events")
        assert rows == [("P1", "oxygen", '{"device":"nasal_cannula","flow_lpm":3.0}')]
        # graded like any other care event: fever + low-flow oxygen is CRS grade 2
        await wait_for(lambda: d.ward.states()[0]["crs_grade"] == 2, what="CRS 2")
        # an explicit time is kept
        ts = "2020-01-01T00:00:00Z"
        status, body = await c.post(
            "/api/beds/w1/b1/care", {"type": "medication", "drug": "tocilizumab", "ts": ts}
        )
        assert status == 422 and is_error(body, "rejected")
        assert "ts" in body["error"]["message"]  # too old: the daemon's own reason
        status, body = await c.post("/api/beds/w1/b1/care", {"type": "oxygen", "device": "jetpack"})
        assert status == 422 and is_error(body, "rejected")
        assert body["error"]["message"].startswith("device: unknown oxygen device")
        status, body = await c.post(
            "/api/beds/w1/b9/care", {"type": "medication", "drug": "tocilizumab"}
        )
        assert status == 422 and body["error"]["message"] == "no patient is admitted to this bed"
        status, body = await c.post(
            "/api/beds/w1/b1/care?patient_id=P7", {"type": "medication", "drug": "tocilizumab"}
        )
        assert status == 409 and is_error(body, "bed_changed")
        status, body = await c.post("/api/beds/w1/b1/care", {"type": "neuro", "ice_score": 7})
        assert status == 201
        assert count(db, "care_events") == 2
        assert count(db, "rejections") >= 3  # refused entries are stored as rejections
    finally:
        await c.close()


async def test_physician_override_is_stored_with_reason_and_audited(make_daemon, publisher):
    d = await make_daemon()
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    doc = await Client.as_user(d, "phil", "physician")
    try:
        await admit(publisher, p, "w1", "b1", "P1", now)
        await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, **NORMAL, "temp_c": 38.6})
        await beds_with(doc, 1, graded=lambda beds: beds[0]["crs_grade"] == 1)
        status, body = await doc.post(
            "/api/patients/P1/override",
            {"scale": "crs", "grade": 2, "reason": "on oxygen since 10:00, not yet entered"},
        )
        assert status == 201 and body["action"] == "override" and body["computed_grade"] == 1
        rows = query(
            db, "SELECT patient_id, ward, bed, username, scale, grade, reason FROM grade_overrides"
        )
        assert rows == [
            ("P1", "w1", "b1", "phil", "crs", 2, "on oxygen since 10:00, not yet entered")
        ]
        status, body = await doc.post(
            "/api/patients/P1/override", {"scale": "crs", "grade": 1, "reason": "fever only"}
        )
        assert status == 201 and body["action"] == "confirm"
        for bad in (
            {"scale": "crs", "grade": 5, "reason": "x"},
            {"scale": "news2", "grade": 1, "reason": "x"},
            {"scale": "crs", "grade": 1, "reason": "  "},
            {"scale": "crs", "grade": True, "reason": "x"},
        ):
            status, body = await doc.post("/api/patients/P1/override", bad)
            assert status == 422 and is_error(body, "invalid"), bad
        status, body = await doc.post(
            "/api/patients/NOBODY/override", {"scale": "crs", "grade": 1, "reason": "x"}
        )
        assert status == 404 and is_error(body, "not_found")
        status, history = await doc.get("/api/patients/P1")
        assert [o["grade"] for o in history["overrides"]] == [2, 1]
        audit = await wait_for(
            lambda: query(
                db, "SELECT name, actor, detail FROM audit WHERE name LIKE 'grade.%' ORDER BY seq"
            )
        )
        assert [(n, a) for n, a, _ in audit] == [
            ("grade.override", "phil"),
            ("grade.confirm", "phil"),
        ]
        assert orjson.loads(audit[0][2])["reason"].startswith("on oxygen")
        logins = query(db, "SELECT actor FROM audit WHERE name='user.login'")
        assert logins == [("phil",)]
    finally:
        await doc.close()


async def raise_emergency(d, publisher, c: Client) -> dict:
    p, now = d.cfg.prefix, time.time()
    await admit(publisher, p, "w1", "b1", "P1", now)
    await publisher(f"{p}/w1/b1/vitals", [{"ts": now - 150, **SICK}, {"ts": now - 5, **SICK}])

    async def tier3():
        status, alerts = await c.get("/api/alerts?state=active")
        return [a for a in alerts if a["tier"] == 3] if status == 200 else []

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = await tier3()
        if found:
            return found[0]
        await _sleep()
    raise AssertionError("no tier-3 alert raised")


async def test_alerts_list_filter_and_acknowledge(make_daemon, publisher, listen):
    d = await make_daemon()
    nurse = await Client.as_user(d, "nina", "nurse")
    try:
        async with listen(f"{d.cfg.prefix}/w1/alerts") as published:
            alert = await raise_emergency(d, publisher, nurse)
            assert {"id", "tier", "kind", "ward", "bed", "patient_id", "state"} <= set(alert)
            assert alert["state"] == "active" and alert["patient_id"] == "P1"
            status, oncall = await nurse.get("/api/alerts?state=active&receiver=physician_on_call")
            assert status == 200 and alert["id"] in [a["id"] for a in oncall]
            status, none = await nurse.get("/api/alerts?state=active&receiver=nobody")
            assert status == 200 and none == []
            status, beds = await nurse.get("/api/beds")
            assert alert["id"] in [a["id"] for a in beds[0]["alerts"]]
            status, body = await nurse.post(f"/api/alerts/{alert['id']}/ack")
            assert status == 200 and body["acked_by"] == "nina", body
            assert body["state"] == "acknowledged"
            status, one = await nurse.get(f"/api/alerts/{alert['id']}")
            assert status == 200 and one["acked_by"] == "nina"
            assert "acknowledged" in [e["event"] for e in one["events"]]
            await wait_for(
                lambda: [
                    m
                    for m in published.json()
                    if m["id"] == alert["id"] and m["event"] == "acknowledged"
                ],
                what="acknowledged event published",
            )
        status, body = await nurse.post("/api/alerts/no-such-alert/ack")
        assert status == 404 and is_error(body, "not_found")
        status, body = await nurse.post(f"/api/alerts/{alert['id']}/snooze", {"seconds": -1})
        assert status == 422 and is_error(body, "invalid")
        status, body = await nurse.post(f"/api/alerts/{alert['id']}/resolve", {"note": ""})
        assert status == 422 and is_error(body, "invalid")
        # a tier-3 emergency: a nurse acknowledges it, never resolves it (issue 15, 8.)
        status, body = await nurse.post(f"/api/alerts/{alert['id']}/resolve", {"note": "x"})
        assert status == 403 and is_error(body, "forbidden") and "physician" in str(body)
        status, body = await nurse.post(
            f"/api/alerts/{alert['id']}/resolve", {"note": "reviewed with the physician"}
        )
        assert status == 403 and is_error(body, "forbidden")
        status, still = await nurse.get(f"/api/alerts/{alert['id']}")
        assert status == 200 and still["state"] == "acknowledged"
        doctor = await Client.as_user(d, "phil", "physician")
        status, body = await doctor.post(f"/api/alerts/{alert['id']}/resolve", {"note": "x"})
        assert status == 403 and "reason" in body["error"]["message"]  # a reason, not "x"
        status, body = await doctor.post(
            f"/api/alerts/{alert['id']}/resolve", {"note": "sensor artefact, patient examined"}
        )
        await doctor.close()
        assert status == 200 and body["state"] == "resolved", body
        refused = query(
            d.cfg["storage.path"],
            "SELECT actor FROM audit WHERE alert_id=? AND name='alert.resolve_refused'",
            alert["id"],
        )
        assert refused == [("nina",), ("nina",), ("phil",)]
        status, resolved = await nurse.get("/api/alerts?state=resolved")
        assert alert["id"] in [a["id"] for a in resolved]
        status, one = await nurse.get(f"/api/alerts/{alert['id']}")
        assert status == 200 and one["state"] == "resolved"
        acks = query(
            d.cfg["storage.path"],
            "SELECT actor FROM audit WHERE alert_id=? AND name='alert.acknowledged'",
            alert["id"],
        )
        assert acks == [("nina",)]
    finally:
        await nurse.close()


async def test_healthz_and_metrics_stay_open_and_unchanged(make_daemon):
    d = await make_daemon()
    async with aiohttp.ClientSession() as s:
        async with s.get(url(d, "/healthz")) as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"


async def test_forecast_quality_is_on_the_dashboard_api(make_daemon):
    d = await make_daemon()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        status, body = await c.get("/api/forecast")
        assert status == 200 and body["enabled"] is True and body["validated"] is False
        assert body["model"] == d.ward.forecaster.model.version
        assert set(body["quality"]) >= {"scored", "auroc", "brier", "calibration"}
    finally:
        await c.close()


async def test_the_pages_read_thresholds_from_their_one_declaration(make_daemon):
    """/api/meta serves monitor/clinical/thresholds.py and the configured risk threshold:
    the JS draws its lines and marks from it, holding no copy of its own."""
    from monitor.clinical import thresholds

    d = await make_daemon(alerts={"risk_threshold": 0.35})
    async with aiohttp.ClientSession() as s:
        async with s.get(url(d, "/api/meta")) as r:
            assert r.status == 401  # patient-facing pages' data: after login only
    c = await Client.as_user(d, "nina", "nurse")
    try:
        status, body = await c.get("/api/meta")
        assert status == 200
        assert body["fever_c"] == thresholds.FEVER_C and body["sbp_low"] == thresholds.SBP_LOW
        assert body["risk_threshold"] == 0.35
        assert [o["id"] for o in body["o2_devices"]] == list(thresholds.O2_DEVICES)
        assert body["news2_hr_3_above"] == 130 and body["news2_rr_3_above"] == 24
        assert "dexamethasone" in body["steroids"] and "tocilizumab" not in body["steroids"]
    finally:
        await c.close()


def test_no_page_script_copies_a_clinical_threshold():
    from tests.support.brokers import ROOT

    for path in (ROOT / "dashboard" / "static" / "js").glob("*.js"):
        text = path.read_text()
        for literal in ("38.0", "dexamethasone", "pct >= 50"):
            assert literal not in text, f"{path.name} copies {literal!r}: use META (/api/meta)"
