"""`evaluate` (commands/evaluate.py) and the figures it pins: detection of every CRS grade >= 2
onset within 5 minutes of the observation or care event that defines it, and an alert
burden a ward can live with (issue 18), on a small seeded cohort through the daemon's own
pipeline (simulate -> replay -> score against the truth)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import orjson
import pytest

from commands import evaluate
from commands.evaluation import report
from commands.replay import run as replay_run
from devices.ward import WardOptions, generate
from monitor import config
from tests.support.brokers import ROOT

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


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


@pytest.fixture(scope="module")
def ward_of_three(tmp_path_factory) -> dict:
    """A realistic small ward: 8 patients x 4 days of each cohort (lymphoma, myeloma,
    autoimmune), seed 2, simulator defaults (confounders, artefacts, a quarter of the
    beds exporting every 5 minutes), replayed as `evaluate` does, a nurse acknowledging
    each alert 5 minutes after it asks: figures per cohort and pooled ("all")."""
    d = tmp_path_factory.mktemp("ward_of_three")
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    args = parser.parse_args(["--seeds", "2", "--patients", "8", "--days", "4"])
    beds, fc = [], []
    for cohort in ("lymphoma", "myeloma", "autoimmune"):
        run = evaluate.one((evaluate.ward_options(2, cohort, args, d), config.from_dict({}), 300.0))
        beds += run["raw"]["beds"]
        fc += run["raw"]["forecast"]
    return report.summarise(beds, fc)


def test_alert_burden_a_ward_can_live_with(ward_of_three):
    """Issue 18's burden targets, on the small realistic ward: at most one alert asking
    someone to act per patient-day in every cohort, and few false urgent raises. The
    target of 0.2 false tier >= 2 raises a patient-day is measured on 40 x 10 cohorts
    (README "Evaluation"); on these 96 patient-days one raise moves the rate by 0.01, so
    the pin is 0.3 pooled: this round's rules give 0.23, the rules before them 4."""
    for cohort in ("lymphoma", "myeloma", "autoimmune"):
        b = ward_of_three[cohort]["burden"]
        assert b["act_alerts_per_patient_day"] <= report.TARGETS["act_alerts_per_patient_day"], (
            cohort,
            b["act_alerts_by_kind_tier"],
        )
        # answered alerts do not repeat: what the ward hears is about what it is asked
        assert b["notifications_per_patient_day"] <= 1.5, (cohort, b)
    pooled = ward_of_three["all"]
    assert pooled["patient_days"] == pytest.approx(96.0)
    assert pooled["burden"]["false_tier2_per_patient_day"] <= 0.3, pooled["burden"]
    g2 = pooled["detection"]["grade2"]
    assert g2["onsets"] >= 3 and g2["detected"] == g2["onsets"], g2["missed"]


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
