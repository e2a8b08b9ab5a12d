"""The command line as a user runs it: `score` and `export` (SPEC.md "Commands")."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import orjson

from tests.support.brokers import ROOT
from tests.test_timeline import NORMAL, T0, FakeClock, Ward

SPEC_SNAPSHOT = {
    "temp_c": 38.4,
    "hr": 112,
    "rr": 22,
    "spo2": 93,
    "sbp": 96,
    "map": 70,
    "acvpu": "A",
    "o2_device": "nasal_cannula",
    "o2_flow_lpm": 3,
    "fio2": None,
    "vasopressors": [],
    "spo2_scale": 1,
    "fever_masked": False,
    "ice_score": 10,
    "seizure": False,
    "motor_weakness": False,
    "cerebral_edema": None,
}


def main(*args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_score_prints_grades_and_reasons():
    r = main("score", stdin=orjson.dumps(SPEC_SNAPSHOT).decode())
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert out["crs_grade"] == 2 and out["icans_grade"] == 0
    assert out["reasons"][:2] == ["fever 38.4 C", "oxygen by nasal cannula 3 L/min"]
    assert set(out["news2"]) >= {"total", "band", "single_parameter_3"}
    assert out["news2"]["band"] in ("low", "low-medium", "medium", "high")


def test_score_with_missing_fields_is_unknown_not_normal():
    r = main("score", stdin='{"temp_c": 38.5}')
    out = orjson.loads(r.stdout)
    assert out["crs_grade"] is None and out["crs_at_least"] == 1
    assert out["news2"]["band"] is None and out["news2"]["complete"] is False


def test_score_bad_snapshot_is_one_line_and_exit_2():
    for stdin in ("not json", '{"temp_c": "hot"}', '{"spo2": 120}', "[]", ""):
        r = main("score", stdin=stdin)
        assert r.returncode == 2, stdin
        assert r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("score:")


def test_export_prints_one_line_per_time_point(tmp_path):
    ward = Ward(tmp_path, FakeClock(T0))
    ward.vitals(T0 + 10, temp_c=38.1, **NORMAL)
    ward.vitals(T0 + 20, hr=95)
    ward.vitals(T0 + 20, spo2=94)  # same time point, sent separately: merged
    ward.pipe.store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\npath = "{ward.db}"\n')
    r = main("export", "--patient", "P1", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    lines = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[1] == {
        "ts": "2026-11-18T11:07:00.000Z",
        "patient_id": "P1",
        "ward": "w1",
        "bed": "b1",
        "hr": 95.0,
        "spo2": 94.0,
    }
    assert lines[0]["temp_c"] == 38.1 and lines[0]["acvpu"] == "A"
    r = main("export", "--patient", "P1", "--format", "csv", "--config", str(cfg))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["hr"] for row in rows] == ["80.0", "95.0"] and rows[1]["temp_c"] == ""
    r = main("export", "--patient", "NOBODY", "--config", str(cfg))
    assert r.returncode == 1 and "no observations" in r.stderr
