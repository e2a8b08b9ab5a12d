"""MQTT in, SQLite out: each inbound format through a real broker into a real database."""

from __future__ import annotations

import time

import aiohttp
import orjson

from devices import encode
from monitor.ingest.messages import Observation
from tests.conftest import wait_for
from tests.support.db import count, query


async def admit(publisher, p, ward="w1", bed="b1", patient="P1", now=None):
    now = now or time.time()
    await publisher(
        f"{p}/{ward}/{bed}/admit",
        {
            "patient_id": patient,
            "ts": now - 3600,
            "age": 41,
            "product": "CD19 CAR-T",
            "indication": "SLE",
            "infusion_ts": now - 2 * 86400,
            "spo2_scale": 1,
        },
    )


async def test_json_vitals_are_stored_and_state_is_published(make_daemon, publisher, listen):
    d = await make_daemon()
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    async with listen(f"{p}/w1/b1/state") as states:
        await admit(publisher, p, now=now)
        await publisher(
            f"{p}/w1/b1/vitals",
            [
                {"ts": now - 20, "hr": 88, "rr": 16, "spo2": 97, "sbp": 121, "dbp": 70, "map": 87},
                {"ts": now - 10, "temp_c": 38.4, "acvpu": "A"},
            ],
        )
        await wait_for(lambda: count(db, "observations") == 2, what="2 rows")
        row = query(db, "SELECT patient_id, hr, spo2, temp_c FROM observations ORDER BY ts")
        assert row == [("P1", 88.0, 97.0, None), ("P1", None, None, 38.4)]
        state = await wait_for(
            lambda: [
                s for s in states.json() if (s.get("vitals", {}).get("temp_c") or {}).get("value")
            ]
        )
        s = state[-1]
        assert s["patient_id"] == "P1" and s["ward"] == "w1" and s["bed"] == "b1"
        assert s["vitals"]["temp_c"]["value"] == 38.4
        assert s["vitals"]["temp_c"]["status"] == "live"
        assert s["crs_grade"] == 1  # fever, normal pressure, on air, SpO2 97
        assert states.messages[-1][0] == f"{p}/w1/b1/state"


async def test_fhir_and_hl7_from_devices_are_stored(make_daemon, publisher):
    d = await make_daemon()
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = round(time.time())
    await admit(publisher, p, bed="b1", patient="P1", now=now)
    await admit(publisher, p, bed="b2", patient="P2", now=now)
    fhir = encode.to_fhir([Observation(now - 30, {"hr": 101, "temp_c": 38.9})], patient_id="P1")
    hl7 = encode.to_hl7(
        [Observation(now - 30, {"hr": 72, "spo2": 95, "sbp": 88})],
        patient_id="P2",
        ward="w1",
        bed="b2",
        msg_id="m1",
    )
    await publisher(f"{p}/w1/b1/fhir", fhir)
    await publisher(f"{p}/w1/b2/hl7", hl7)
    await wait_for(lambda: count(db, "observations") == 2, what="fhir and hl7 rows")
    rows = dict(
        (r[0], r[1:])
        for r in query(db, "SELECT bed, source, hr, temp_c, spo2, sbp FROM observations")
    )
    assert rows["b1"] == ("fhir", 101.0, 38.9, None, None)
    assert rows["b2"] == ("hl7", 72.0, None, 95.0, 88.0)


BAD = [
    ("vitals", b"{not json", "JSON"),
    ("vitals", orjson.dumps({"ts": "NOW", "hr": "fast"}), "hr"),
    ("vitals", orjson.dumps({"ts": "yesterday", "hr": 80}), "ts"),
    ("vitals", orjson.dumps({"ts": 0, "hr": 80}), "past"),
    ("vitals", "HR900", "hr"),
    ("vitals", "SPO2_120", "spo2"),
    ("vitals", "FUTURE", "future"),
    ("vitals", "NAIVE", "zone"),
    ("vitals", orjson.dumps({"ts": "NOW", "hr": True}), "hr"),
    ("care", orjson.dumps({"ts": "NOW", "type": "voodoo"}), "type"),
    ("hl7", b"MSH|^~\\&|X\rPID|||P1", "ORU"),
    ("fhir", orjson.dumps({"resourceType": "Patient"}), "resourceType"),
]


def _payload(raw, now):
    sample = {
        "HR900": {"ts": now, "hr": 900},
        "SPO2_120": {"ts": now, "spo2": 120},
        "FUTURE": {"ts": now + 3600, "hr": 80},
        "NAIVE": {"ts": "2026-11-25T10:00:00", "hr": 80},
    }
    if isinstance(raw, str):
        return orjson.dumps(sample[raw])
    return raw.replace(b'"NOW"', str(now).encode())


async def test_bad_input_is_rejected_published_stored_counted(make_daemon, publisher, listen):
    d = await make_daemon()
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, patient="SECRET-ID-1", now=now)
    await wait_for(lambda: count(db, "admissions") == 1)
    async with listen(f"{p}/rejected") as rejected:
        for kind, raw, _ in BAD:
            await publisher(f"{p}/w1/b1/{kind}", _payload(raw, now))
        await publisher(f"{p}/w1/b1/vitals", b"x" * (d.cfg["ingest.max_message_bytes"] + 1))
        await publisher(f"{p}/w1/nobed/vitals", {"ts": now, "hr": 80})  # no admission
        await publisher(f"{p}/w1/b1/admit", {"patient_id": "OTHER", "ts": now})  # occupied
        n = len(BAD) + 3
        got = await wait_for(
            lambda: len(rejected.messages) >= n and rejected.json(),
            what="every rejection published",
        )
    assert len(got) == n, [t for t, _, _ in rejected.messages]
    for msg, (kind, _, word) in zip(got, BAD, strict=False):
        assert set(msg) == {"topic", "reason", "received_ts"}
        assert msg["topic"].endswith(f"/w1/b1/{kind}")
        assert word.lower() in msg["reason"].lower(), msg
    assert "over the limit" in got[-3]["reason"]
    assert got[-2]["reason"] == "no patient is admitted to this bed"
    assert "occupied" in got[-1]["reason"]
    for msg in got:  # no patient data beyond the topic
        assert "SECRET" not in orjson.dumps(msg).decode()
    # (amqtt 0.12 may also hand the daemon a stranger's retained message on subscribe:
    # rejected too, but not counted here)
    assert count(db, "rejections", "topic LIKE ?", f"{p}/%") == n
    assert count(db, "observations") == 0
    metrics = await _get(d, "/metrics")
    rejected_total = float(count(db, "rejections"))
    assert f"crswatch_messages_rejected_total {rejected_total}" in metrics
    # the daemon is still at work and the patient's state was not changed by any of it
    await publisher(f"{p}/w1/b1/vitals", {"ts": now, "hr": 80})
    await wait_for(lambda: count(db, "observations") == 1)
    assert query(db, "SELECT patient_id FROM admissions") == [("SECRET-ID-1",)]


async def test_duplicates_are_stored_once_and_separate_vitals_merge(make_daemon, publisher):
    d = await make_daemon()
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now=now)
    reading = {"ts": now - 5, "hr": 90, "spo2": 96}
    for _ in range(3):
        await publisher(f"{p}/w1/b1/vitals", reading)
    await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, "sbp": 110})  # same time point
    await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, "hr": 95})  # conflicts
    await wait_for(
        lambda: count(db, "rejections", "topic LIKE ?", f"{p}/%") == 1, what="the conflict rejected"
    )
    assert query(db, "SELECT hr, spo2, sbp FROM observations") == [(90.0, 96.0, 110.0)]
    metrics = await _get(d, "/metrics")
    assert "crswatch_observations_stored_total 1.0" in metrics
    assert "crswatch_messages_duplicate_total 2.0" in metrics


async def test_care_events_and_discharge(make_daemon, publisher):
    d = await make_daemon()
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now=now)
    care = {"ts": now - 60, "type": "oxygen", "device": "nasal_cannula", "flow_lpm": 3}
    await publisher(f"{p}/w1/b1/care", care)
    await publisher(f"{p}/w1/b1/care", care)  # redelivered: stored once
    await publisher(f"{p}/w1/b1/device", b"offline")
    await publisher(f"{p}/w1/b1/discharge", {"ts": now})
    await wait_for(
        lambda: query(db, "SELECT 1 FROM admissions WHERE discharged_ts > 0"), what="discharged"
    )
    assert count(db, "care_events") == 1
    assert query(db, "SELECT state FROM device_events") == [("offline",)]
    await publisher(f"{p}/w1/b1/vitals", {"ts": now, "hr": 80})  # bed is empty now
    await wait_for(lambda: count(db, "rejections", "topic LIKE ?", f"{p}/%") == 1)


async def test_healthz_and_metrics_answer_without_login(make_daemon):
    d = await make_daemon()
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["status"] == "ok"
    text = await _get(d, "/metrics")
    for name in (
        "crswatch_messages_received_total",
        "crswatch_messages_rejected_total",
        "crswatch_observations_stored_total",
        "crswatch_alerts_total",
    ):
        assert name in text


async def _get(d, path: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}{path}") as r:
            return await r.text()
