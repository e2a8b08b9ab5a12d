"""A harder simulator (devices/confounders.py, artefacts.py, evidence.py): what is not CRS
stays not CRS in the truth, artefacts are two readings long as on a real ward, 5-minute
beds, and every onset carries the observation or care event that defines it."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import orjson
import pytest

from devices import confounders as conf
from devices.physiology import Treatment, draw_patient, state_at
from devices.truth import crs_truth, need_levels
from devices.ward import WardOptions, generate
from monitor.ingest import decode_fhir, decode_hl7, decode_json
from monitor.ingest.validate import parse_ts

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY, HOUR = 86400.0, 3600.0
DECODE = {
    "vitals": decode_json.decode_vitals,
    "fhir": decode_fhir.decode_fhir,
    "hl7": decode_hl7.decode_hl7,
}


def find(cohort: str, cond):
    rng = np.random.default_rng(11)
    for i in range(400):
        p = draw_patient(rng, cohort, f"P{i}", T0)
        if cond(p):
            return p
    raise AssertionError("no such patient drawn")


def over_stay(p, days: float = 10, step: float = 600.0):
    t = p.admit_ts
    while t < p.admit_ts + days * DAY:
        yield t, state_at(p, t, Treatment())
        t += step


def test_copd_patient_lives_at_88_to_92_on_air_and_is_not_crs_grade_2():
    p = find("lymphoma", lambda p: p.course.crs_grade == 0)
    copd = conf.with_copd(p, np.random.default_rng(3))
    assert copd.spo2_scale == 2
    for _, s in over_stay(copd):
        assert 88.0 <= s.spo2_room_air <= 92.0 and 88.0 <= s.spo2 <= 92.0
        assert crs_truth(s, copd, masked=False) < 2
        assert crs_truth(s, copd, masked=True) < 2
        # febrile, the room-air SpO2 of 88-92 is the patient's own target, not hypoxaemia
        assert crs_truth(dataclasses.replace(s, temp_c=38.6, temp_crs=38.6), copd, False) < 2


def test_copd_patient_with_crs_hypoxia_falls_below_the_own_target():
    p = find("lymphoma", lambda p: p.course.crs_grade == 2 and p.course.spo2_drop > 2.5)
    copd = conf.with_copd(p, np.random.default_rng(3))
    peak = copd.course.leak.onset + copd.course.leak.rise_s + 60
    s = state_at(copd, peak, Treatment())
    assert s.spo2_room_air < 88  # below the scale-2 target range
    assert need_levels(s, copd)[1] == need_levels(state_at(p, peak, Treatment()), p)[1]


def test_transfusion_reaction_and_late_infection_are_fever_but_not_crs():
    p = find("autoimmune", lambda p: p.course.crs_grade == 0)
    episodes = (
        conf.Episode("transfusion_reaction", T0 + 5 * HOUR, T0 + 6 * HOUR, fever_c=2.0, hr=25),
        conf.Episode("late_infection", T0 + 4 * DAY, T0 + 5 * DAY, fever_c=2.2, hr=20, rr=3),
    )
    q = dataclasses.replace(p, confounders=conf.Confounders(False, episodes))
    for t in (T0 + 5.5 * HOUR, T0 + 4.5 * DAY):
        s, calm = state_at(q, t, Treatment()), state_at(p, t, Treatment())
        assert s.temp_c >= 38.2 and s.hr >= calm.hr + 20
        assert crs_truth(s, q, masked=False) == 0 and crs_truth(s, q, masked=True) == 0
    assert state_at(q, T0 + 8 * HOUR, Treatment()).temp_c < 38.0  # the hour is over


def test_pain_raises_heart_rate_without_fever():
    p = find("autoimmune", lambda p: p.course.crs_grade == 0)
    pain = conf.Episode("pain_or_anxiety", T0 + HOUR, T0 + 3 * HOUR, hr=30, rr=3)
    q = dataclasses.replace(p, confounders=conf.Confounders(False, (pain,)))
    s, calm = state_at(q, T0 + 2 * HOUR, Treatment()), state_at(p, T0 + 2 * HOUR, Treatment())
    assert s.hr == pytest.approx(calm.hr + 30) and s.temp_c == calm.temp_c
    assert crs_truth(s, q, masked=False) == 0


def test_draw_places_late_infection_days_after_crs_and_scale_0_draws_nothing():
    rng = np.random.default_rng(1)
    seen = collections.Counter()
    for _ in range(300):
        c = conf.draw(rng, T0, T0 + 14 * DAY, crs_end=T0 + 3 * DAY, baseline_temp=36.8)
        for e in c.episodes:
            seen[e.kind] += 1
            if e.kind == "late_infection":
                assert e.start >= T0 + 5 * DAY - 1
        seen["copd"] += c.copd
    assert set(seen) == {"pain_or_anxiety", "transfusion_reaction", "late_infection", "copd"}
    assert conf.draw(rng, T0, T0 + DAY, None, 36.8, scale=0) == conf.NONE
    for _ in range(50):  # a stay of an hour: every episode inside it
        short = conf.draw(rng, T0, T0 + HOUR, None, 36.8, scale=5)
        assert all(T0 <= e.start <= e.end <= T0 + HOUR for e in short.episodes)


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    d = tmp_path_factory.mktemp("harder")
    opts = WardOptions(
        beds=4, days=1.5, start=T0, mqtt=False, demo=True, cohort="lymphoma", seed=8,
        fast_interval_s=60, artefact_scale=3, slow_share=0.5, protocol="json",
        record=str(d / "rec.jsonl"), truth=str(d / "truth.jsonl"),
    )  # fmt: skip
    generate(opts)
    records = [orjson.loads(x) for x in (d / "rec.jsonl").read_bytes().splitlines()]
    truth = [orjson.loads(x) for x in (d / "truth.jsonl").read_bytes().splitlines()]
    points = collections.defaultdict(dict)  # bed -> ts -> values
    for r in records:
        _, _, bed, kind = r["topic"].split("/")
        if kind in DECODE:
            for obs in DECODE[kind](r["payload"].encode(), parse_ts(r["ts"])):
                points[bed].setdefault(obs.ts, {}).update(obs.values)
    return records, truth, points


def _windows(truth, kind):
    return [
        (t["bed"], parse_ts(t["ts"]), parse_ts(t["ts"]) + t.get("duration_s", 0))
        for t in truth
        if t.get("artefact") == kind
    ]


def test_artefacts_are_one_to_three_samples_long(ward):
    _, truth, points = ward
    fast = {t["bed"]: t["fast_interval_s"] for t in truth if "fast_interval_s" in t}
    assert 300.0 in fast.values() and set(fast.values()) <= {60.0, 300.0}  # 5-minute beds
    for bed, times in points.items():
        hr = sorted(t for t, v in times.items() if "hr" in v)
        gaps = np.diff(hr)  # the cadence (or a multiple: readings lost while offline)
        assert gaps.min() == fast[bed] and not (gaps % fast[bed]).any()
    low_spo2 = _windows(truth, "spo2_low")
    assert low_spo2
    for bed, start, end in low_spo2:
        inside = [v["spo2"] for t, v in points[bed].items() if start <= t < end and "spo2" in v]
        assert len(inside) <= 3 and all(x < 89 for x in inside)
    bursts = _windows(truth, "rr_burst")
    assert bursts
    for bed, start, end in bursts:
        mid = start + 0.5 * (end - start)
        for t, v in points[bed].items():
            if start <= t < end and "rr" in v:  # about 40, then about 32
                assert 38 <= v["rr"] <= 42 if t < mid else 30 <= v["rr"] <= 34
    lead_off = _windows(truth, "lead_off")
    assert lead_off and all(60 <= end - start <= 180 for _, start, end in lead_off)


def test_a_falsely_low_cuff_is_repeated_by_the_nurse(ward):
    _, truth, points = ward
    lows = [(t["bed"], parse_ts(t["ts"])) for t in truth if t.get("artefact") == "cuff_low"]
    assert lows
    for bed, ts in lows:
        cuffs = sorted((t, v["sbp"]) for t, v in points[bed].items() if "sbp" in v)
        later = [(t, s) for t, s in cuffs if t > ts]
        if later:  # the next reading 2-4 min later, right again (unless truly low)
            assert 110 <= later[0][0] - ts <= 250


def test_every_onset_carries_its_defining_observation_or_care_event(ward):
    records, truth, _ = ward
    onsets = [t for t in truth if "onset_grade" in t]
    assert onsets and any(t["observable"] for t in onsets)
    care = collections.defaultdict(list)
    for r in records:
        if r["topic"].endswith("/care"):
            body = orjson.loads(r["payload"])
            care[r["topic"].split("/")[2]].append((parse_ts(r["ts"]), body["type"]))
    for t in onsets:
        assert t["onset_grade"] in (2, 3) and isinstance(t["masked"], bool)
        if not t["observable"]:
            continue
        assert parse_ts(t["ts"]) >= parse_ts(t["true_onset_ts"]) and t["defined_by"]
        if t["after_care"] == "oxygen":  # oxygen charted then, and delivered
            assert (parse_ts(t["ts"]), "oxygen") in care[t["bed"]]


def test_an_spo2_sample_made_by_an_artefact_defines_no_onset(ward):
    """devices/bed.py: a probe slipping or motion shows the probe, not the patient; the
    truth never dates an onset to such a sample (docs/evaluation.md, "What is counted")."""
    _, truth, points = ward
    made = [w for kind in ("spo2_low", "motion") for w in _windows(truth, kind)]
    assert made
    by_spo2 = [t for t in truth if "second sample" in t.get("defined_by", "")]
    for t in by_spo2:
        ts = parse_ts(t["ts"])
        assert not any(b == t["bed"] and s <= ts < e for b, s, e in made), t


def test_a_probe_slip_is_not_evidence_but_a_real_low_spo2_is():
    from devices.bed import BedSim
    from devices.evidence import Evidence

    class NoWindows:
        def active(self, kind, ts):
            return None

    def bed():
        b = BedSim.__new__(BedSim)  # only what _evidence_of reads
        b.plan, b.evidence, b._crs_fever, b._now = NoWindows(), Evidence(1), True, 0.0
        b.shown = []
        b._onsets = b.shown.extend
        b.evidence.true_grade(0.0, 2, False)  # a true grade-2 onset, waiting for evidence
        b._evidence_of(0.0, {"temp_c": 38.6}, [])
        return b

    slipped = bed()
    for t in (60.0, 120.0, 180.0):
        slipped._evidence_of(t, {"spo2": 78}, ["spo2_low"])
    assert slipped.shown == []  # the probe, not the patient
    real = bed()
    for t in (60.0, 120.0):
        real._evidence_of(t, {"spo2": 88}, [])
    assert [(d.defined_ts, d.by) for d in real.shown] == [
        (120.0, "temperature 38.6 C; SpO2 88 on room air, second sample")
    ]
