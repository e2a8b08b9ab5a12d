"""`evaluate` (commands/evaluate.py) and the figures it pins: detection of every CRS grade >= 2
onset within 5 minutes of the observation or care event that defines it, and an alert
burden a ward can live with (issue 18), on a small seeded cohort through the daemon's own
pipeline (simulate -> replay -> score against the truth)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from commands.evaluation import report
from commands.replay import run as replay_run
from devices.ward import WardOptions, generate
from monitor import config
from tests.support.brokers import ROOT

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ISSUE_18 = "issue 18 open: false urgent raises still above 0.2 a patient-day on this cohort"


@pytest.fixture(scope="module")
def pinned(tmp_path_factory) -> dict:
    """6 lymphoma patients x 2 days, seed 8, CRS within the first day (demo), every
    confounder and artefact, a quarter of the beds exporting every 5 minutes: four onsets
    of grade 2 (three defined by oxygen started, one after tocilizumab masked the fever)
    and one of grade 3 (a vasopressor started)."""
    d = tmp_path_factory.mktemp("pinned")
    opts = WardOptions(
        beds=6,
        days=2,
        start=T0,
        mqtt=False,
        demo=True,
        cohort="lymphoma",
        seed=8,
        fast_interval_s=60,
        slow_share=0.25,
        record=str(d / "rec.jsonl"),
        truth=str(d / "truth.jsonl"),
    )
    generate(opts)
    result = replay_run(opts.record, config.from_dict({}), truth=opts.truth)
    return result["summary"]["lymphoma"]


def test_every_crs_onset_is_alerted_within_5_minutes_of_its_evidence(pinned):
    g2, g3 = pinned["detection"]["grade2"], pinned["detection"]["grade3"]
    assert g2["onsets"] >= 3 and g3["onsets"] >= 1  # the cohort has onsets to miss
    assert pinned["detection"]["masked_fever"]["onsets"] >= 1
    assert g2["detected"] == g2["onsets"], g2["missed"]
    assert g3["detected"] == g3["onsets"], g3["missed"]


@pytest.mark.xfail(strict=True, reason=ISSUE_18)
def test_alert_burden_a_ward_can_live_with(pinned):
    b = pinned["burden"]
    assert b["false_tier2_per_patient_day"] <= report.TARGETS["false_tier2_per_patient_day"], b
    assert b["act_alerts_per_patient_day"] <= report.TARGETS["act_alerts_per_patient_day"], b


def test_evaluate_prints_the_table_and_writes_the_report(tmp_path):
    r = subprocess.run(
        [sys.executable, "main.py", "evaluate", "--seeds", "3", "--patients", "2",
         "--days", "0.5", "--cohorts", "myeloma,autoimmune", "--jobs", "1",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "seed 3" in r.stdout and "all seeds" in r.stdout and "myeloma" in r.stdout
    doc = orjson.loads((tmp_path / "report.json").read_bytes())
    assert doc["seeds"] == [3] and doc["cohorts"] == ["myeloma", "autoimmune"]
    assert set(doc["cohort_over_seeds"]) == {"myeloma", "autoimmune"}
    for figures in doc["cohort_over_seeds"].values():
        assert figures["patients"] == 2 and figures["patient_days"] == pytest.approx(1.0)
        assert {"grade2", "grade3", "masked_fever"} <= set(figures["detection"])
        assert "false_tier2_per_patient_day" in figures["burden"]
    assert (tmp_path / "myeloma-3.record.jsonl").exists()
    assert (tmp_path / "autoimmune-3.truth.jsonl").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "a,b"], "--seeds"),
        (["--seeds", "1", "--cohorts", "leukaemia"], "--cohorts"),
        (["--seeds", "1", "--patients", "0"], "--patients"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, tmp_path):
    r = subprocess.run(
        [sys.executable, "main.py", "evaluate", *argv, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and message in r.stderr
    assert r.stderr.strip().count("\n") == 0
