"""`export --format fhir`: what the daemon stored about a patient, as a FHIR R4 Bundle a
hospital can load: validated by a maintained FHIR model library (fhir.resources, R4B
models: R4B changed nothing in the resources used here), codes and units checked."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import orjson
from fhir.resources.R4B.bundle import Bundle

from commands.export import export
from commands.fhir_bundle import CODES
from tests.conftest import wait_for
from tests.support.brokers import ROOT
from tests.support.db import count
from tests.test_decode_real import us_core_pulse_ox
from tests.test_ingest import admit

LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"


async def test_a_patients_history_exports_as_a_valid_fhir_r4_bundle(make_daemon, publisher):
    d = await make_daemon()
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now=now)
    await wait_for(lambda: count(db, "admissions") == 1, what="admitted")
    t = [now - 600 + 60 * i for i in range(6)]
    vitals = {"hr": 118, "rr": 24, "spo2": 95, "sbp": 84, "dbp": 50, "map": 61, "acvpu": "A"}
    for ts in t[:2]:
        await publisher(f"{p}/w1/b1/vitals", {"ts": ts, "temp_c": 38.9, **vitals})
    pulse_ox = {**us_core_pulse_ox(), "effectiveDateTime": _iso(t[2])}
    await publisher(f"{p}/w1/b1/fhir", pulse_ox)
    for body in (
        {"ts": t[3], "type": "oxygen", "device": "nasal_cannula", "flow_lpm": 6},
        {
            "ts": t[3],
            "type": "vasopressor",
            "drug": "norepinephrine",
            "action": "start",
            "dose": 0.05,
        },
        {"ts": t[4], "type": "vasopressor", "drug": "norepinephrine", "action": "stop"},
        {"ts": t[4], "type": "medication", "drug": "tocilizumab"},
        {"ts": t[5], "type": "neuro", "ice_score": 8},
    ):
        await publisher(f"{p}/w1/b1/care", body)
    await wait_for(lambda: count(db, "care_events") == 5, what="care stored")
    await wait_for(lambda: count(db, "alerts") >= 1, what="an alert raised")
    await wait_for(lambda: count(db, "grades") >= 1, what="grades stored")
    await d.stop()

    out = io.StringIO()
    assert export(d.cfg, "P1", "fhir", out) == 0
    data = orjson.loads(out.getvalue())
    parsed = Bundle.model_validate(data)  # raises on anything not FHIR
    assert parsed.type == "transaction"
    by_type: dict[str, list[dict]] = {}
    for entry in data["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
        assert entry["request"]["method"] == "POST"
        assert entry["request"]["ifNoneExist"].startswith("identifier=")
    assert set(by_type) == {
        "Patient",
        "Observation",
        "MedicationAdministration",
        "Procedure",
        "Flag",
    }

    observations = by_type["Observation"]
    vital_signs = [
        o for o in observations if o["category"][0]["coding"][0]["code"] == "vital-signs"
    ]
    for o in vital_signs:  # LOINC codes, UCUM units
        assert o["code"]["coding"][0]["system"] == LOINC
        for q in [o.get("valueQuantity")] + [
            c.get("valueQuantity") for c in o.get("component", [])
        ]:
            assert q is None or q["system"] == UCUM
    spo2 = [o for o in vital_signs if o["code"]["coding"][0]["code"] == "59408-5"]
    with_oxygen = [o for o in spo2 if o.get("component")]
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
        for c in with_oxygen[0]["component"]
    ] == [
        ("3151-8", 6.0, "L/min"),
        ("3150-0", 40.0, "%"),
    ]
    bp = [o for o in vital_signs if o["code"]["coding"][0]["code"] == "85354-9"]
    assert [c["code"]["coding"][0]["code"] for c in bp[0]["component"]] == [
        "8480-6",
        "8462-4",
        "8478-0",
    ]
    temps = [o["valueQuantity"] for o in vital_signs if o["code"]["coding"][0]["code"] == "8310-5"]
    assert temps[0] == {"value": 38.9, "unit": "Cel", "system": UCUM, "code": "Cel"}

    grades = [o for o in observations if o["code"]["coding"][0]["system"] == CODES]
    crs = [o for o in grades if o["code"]["coding"][0]["code"] == "crs-grade"]
    assert crs and all("valueInteger" in o or "dataAbsentReason" in o for o in crs)
    assert any(o.get("valueInteger", 0) >= 1 for o in crs)
    assert any(o["code"]["coding"][0]["code"] == "icans-grade" for o in grades)
    assert [o["valueInteger"] for o in grades if o["code"]["coding"][0]["code"] == "ice-score"] == [
        8
    ]

    drugs = {m["medicationCodeableConcept"]["text"]: m for m in by_type["MedicationAdministration"]}
    assert drugs["norepinephrine"]["status"] == "completed"
    assert set(drugs["norepinephrine"]["effectivePeriod"]) == {"start", "end"}
    assert drugs["tocilizumab"]["status"] == "completed"
    assert by_type["Procedure"][0]["code"]["coding"][0]["code"] == "57485005"
    assert all(f["status"] in ("active", "inactive") for f in by_type["Flag"])
    patient = data["entry"][0]
    assert patient["resource"]["identifier"] == [{"system": "urn:crswatch:patient", "value": "P1"}]
    assert all(
        e["resource"].get("subject", {}).get("reference") == patient["fullUrl"]
        for e in data["entry"][1:]
    )

    # the same data exports to the same Bundle (ids are stable: a reload creates nothing new)
    again = io.StringIO()
    export(d.cfg, "P1", "fhir", again)
    assert [e["fullUrl"] for e in orjson.loads(again.getvalue())["entry"]] == [
        e["fullUrl"] for e in data["entry"]
    ]


def test_a_patient_with_nothing_stored_exits_1_and_prints_nothing(tmp_path):
    from monitor.store.schema import open_db

    db = tmp_path / "x.db"
    open_db(str(db)).close()  # a daemon's database, with no such patient
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\npath = "{db}"\n')
    command = [sys.executable, "main.py", "export", "--patient", "NOPE", "--format", "fhir"]
    run = subprocess.run([*command, "--config", str(cfg)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert run.stderr == "crswatch: export: no observations stored for patient NOPE\n"
    assert run.stdout == ""


def _iso(ts: float) -> str:
    from monitor.clock import iso

    return iso(ts)
