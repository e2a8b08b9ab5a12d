"""The simulated patients (devices/physiology.py) and staff (devices/staff.py): seeded,
drawn from the cohorts' published distributions (CLINICAL.md "Time course"), and
responding to treatment the way the ward expects."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest

from devices.physiology import DAY, HOUR, Treatment, draw_patient, state_at
from devices.staff import O2_LADDER, Staff
from devices.truth import crs_truth, icans_truth, need_levels
from devices.ward import WardOptions, build_beds

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def patients(cohort: str, n: int, seed: int = 11) -> list:
    return [draw_patient(np.random.default_rng([seed, i]), cohort, f"P{i}", T0) for i in range(n)]


def find(cohort: str, cond, seed: int = 5):
    for p in patients(cohort, 400, seed):
        if cond(p):
            return p
    raise AssertionError("no such patient drawn")


# -- seeded ---------------------------------------------------------------------------------


def test_same_seed_same_patient_different_seed_different():
    a = draw_patient(np.random.default_rng(42), "lymphoma", "P1", T0)
    b = draw_patient(np.random.default_rng(42), "lymphoma", "P1", T0)
    c = draw_patient(np.random.default_rng(43), "lymphoma", "P1", T0)
    assert a == b
    assert a != c
    tx = Treatment()
    assert [state_at(a, T0 + h * HOUR, tx) for h in range(0, 240, 7)] == [
        state_at(b, T0 + h * HOUR, tx) for h in range(0, 240, 7)
    ]


def test_no_global_random_state_is_used():
    np.random.seed(1)
    a = draw_patient(np.random.default_rng(3), "autoimmune", "P", T0)
    np.random.seed(2)
    b = draw_patient(np.random.default_rng(3), "autoimmune", "P", T0)
    assert a == b


def test_unknown_cohort_is_an_error():
    with pytest.raises(ValueError, match="cohort"):
        draw_patient(np.random.default_rng(1), "leukaemia", "P", T0)


# -- cohort distributions -------------------------------------------------------------------


def test_autoimmune_cohort_matches_mueller_2024():
    ps = patients("autoimmune", 300)
    grades = [p.course.crs_grade for p in ps]
    share = sum(g > 0 for g in grades) / len(ps)
    assert 0.60 <= share <= 0.85  # 11/15
    assert max(grades) <= 2  # none grade 3 or more
    crs = [g for g in grades if g]
    assert sum(g == 1 for g in crs) / len(crs) >= 0.8  # 10 of 11 grade 1
    icans = [p.course.icans_grade for p in ps]
    assert max(icans) <= 1 and sum(i > 0 for i in icans) / len(ps) <= 0.15  # rare, grade 1
    assert all(18 <= p.age <= 65 for p in ps)


def test_lymphoma_cohort_matches_pivotal_trials():
    ps = patients("lymphoma", 300)
    grades = [p.course.crs_grade for p in ps]
    share = sum(g > 0 for g in grades) / len(ps)
    assert 0.58 <= share <= 0.94
    severe = sum(g >= 3 for g in grades) / len(ps)
    assert 0.06 <= severe <= 0.22  # about 13 %
    onsets = [(p.course.fever_onset - p.infusion_ts) / DAY for p in ps if p.course.crs_grade]
    assert 1.0 <= statistics.median(onsets) <= 4.0  # median day 2-3
    assert min(onsets) >= 0.9 and max(onsets) <= 12.0  # range 1-12, none after day 14
    icans = [p.course.icans_grade for p in ps]
    assert sum(i > 0 for i in icans) / len(ps) >= 0.15
    assert 0 < sum(i >= 3 for i in icans) / len(ps) <= 0.15  # grade 3-4 rare, not absent
    for p in ps:  # ICANS after CRS onset
        if p.course.icans_grade:
            assert p.course.icans.onset > p.course.fever_onset
    durations = [(p.course.crs.end - p.course.fever_onset) / DAY for p in ps if p.course.crs_grade]
    assert 4 <= statistics.median(durations) <= 10  # median about a week


def test_admitted_on_infusion_day_or_the_day_after():
    for p in patients("lymphoma", 50) + patients("autoimmune", 50):
        assert p.admit_ts == T0
        assert T0 - DAY <= p.infusion_ts <= T0
        if p.course.crs_grade:
            assert p.course.fever_onset > T0  # nothing before the monitoring starts


def test_demo_mode_brings_crs_into_the_first_day():
    ps = [
        draw_patient(np.random.default_rng([9, i]), "lymphoma", "P", T0, demo=True)
        for i in range(100)
    ]
    onsets = [(p.course.fever_onset - T0) / HOUR for p in ps if p.course.crs_grade]
    assert max(onsets) <= 31 and statistics.median(onsets) <= 8


def test_age_changes_the_baseline():
    young = patients("autoimmune", 200)
    old = patients("lymphoma", 200)
    assert (
        statistics.mean(p.baseline.sbp for p in old)
        > statistics.mean(p.baseline.sbp for p in young) + 5
    )
    assert statistics.mean(p.baseline.hr for p in old) < statistics.mean(
        p.baseline.hr for p in young
    )


# -- physiology ------------------------------------------------------------------------------


def test_daily_rhythm_without_crs():
    p = find("autoimmune", lambda p: p.course.crs_grade == 0)
    temps = [state_at(p, T0 + 2 * DAY + h * HOUR, Treatment()).temp_c for h in range(24)]
    assert 0.3 <= max(temps) - min(temps) <= 1.0
    assert max(temps) < 37.8


def test_fever_raises_heart_rate_8_to_10_per_degree():
    p = find("lymphoma", lambda p: p.course.crs_grade == 1 and p.course.fever_c > 1.8)
    well = dataclasses.replace(
        p, course=dataclasses.replace(p.course, crs=None, leak=None, crs_grade=0)
    )
    t = p.course.fever_onset + 3 * HOUR
    sick, calm = state_at(p, t, Treatment()), state_at(well, t, Treatment())
    rise = sick.temp_c - calm.temp_c
    assert rise >= 1.0
    assert 8 * rise <= sick.hr - calm.hr <= 10 * rise + 8  # + cytokine tachycardia


def test_tocilizumab_lowers_temperature_within_hours():
    p = find(
        "lymphoma",
        lambda p: (
            p.course.crs_grade == 2 and p.course.toci_response > 0.85 and p.course.fever_c > 2.0
        ),
    )
    t = p.course.fever_onset + 6 * HOUR
    untreated = [state_at(p, t + h * HOUR, Treatment()).temp_c for h in range(0, 7)]
    treated = [state_at(p, t + h * HOUR, Treatment(toci=[t])).temp_c for h in range(0, 7)]
    assert min(untreated) >= 38.0
    assert treated[4] < 38.0 and treated[6] < 37.8
    assert untreated[4] - treated[4] >= 1.2


def test_oxygen_vasopressor_and_fluids_help():
    p = find(
        "lymphoma",
        lambda p: p.course.crs_grade >= 3 and p.course.spo2_drop > 10 and p.course.bp_drop > 30,
    )
    t = p.course.leak.onset + p.course.leak.rise_s + 60
    base = state_at(p, t, Treatment())
    assert base.spo2 < 92 and base.sbp < 90
    o2 = state_at(p, t, Treatment(o2_device="hfnc", o2_support=O2_LADDER[5][3]))
    assert o2.spo2 >= base.spo2 + 5
    pressor = state_at(p, t, Treatment(pressors={"norepinephrine": 0.1}))
    assert pressor.sbp >= base.sbp + 15
    fluids = state_at(p, t + 600, Treatment(fluids=[t]))
    assert fluids.sbp > state_at(p, t + 600, Treatment()).sbp + 5


def test_icans_lowers_ice_score_and_consciousness():
    p = find("lymphoma", lambda p: p.course.icans_grade >= 3, seed=3)
    ep = p.course.icans
    s = state_at(p, ep.onset + ep.rise_s + 60, Treatment())
    assert s.ice <= 2 and s.acvpu in ("P", "U")
    assert icans_truth(s) >= 3
    later = state_at(p, ep.end + HOUR, Treatment())
    assert later.ice == 10 and later.acvpu == "A" and icans_truth(later) == 0


def _peak(p):
    return p.course.leak.onset + p.course.leak.rise_s + 60


def test_true_crs_grade_follows_astct():
    p = find(
        "lymphoma",
        lambda p: (
            p.course.crs_grade == 3 and need_levels(state_at(p, _peak(p), Treatment()), p)[0] == 3
        ),
    )
    s = state_at(p, _peak(p), Treatment())
    assert need_levels(s, p)[0] >= 3 and s.temp_c >= 38
    assert crs_truth(s, p, masked=False) == 3
    cool = dataclasses.replace(s, temp_c=37.0)
    assert crs_truth(cool, p, masked=False) == 0  # fever required...
    assert crs_truth(cool, p, masked=True) == 3  # ...unless masked by treatment
    calm = state_at(p, T0 + 600, Treatment())
    assert crs_truth(calm, p, masked=True) == 0


# -- staff -----------------------------------------------------------------------------------


def _state(**kw):
    p = find("autoimmune", lambda p: p.course.crs_grade == 0)
    return dataclasses.replace(state_at(p, T0, Treatment()), **kw)


def run_staff(staff: Staff, minutes: int, state, start: float = T0) -> list:
    done = []
    for m in range(minutes):
        done += staff.step(start + m * 60, state)
    return done


def test_staff_give_oxygen_for_sustained_low_spo2_after_a_delay():
    staff = Staff(np.random.default_rng(1), T0)
    done = [c for c in run_staff(staff, 240, _state(spo2=89.0)) if c.body["type"] == "oxygen"]
    assert done and done[0].body == {"type": "oxygen", "device": "nasal_cannula", "flow_lpm": 2}
    assert 10 * 60 <= done[0].ts - T0 <= 30 * 60  # 5 min sustained + 5-25 min delay
    # one step at a time, at least 15 min apart: 2, 4, 6 L/min, face mask, HFNC...
    assert [c.body["device"] for c in done[:6]] == ["nasal_cannula"] * 3 + [
        "simple_face_mask",
        "hfnc",
        "hfnc",
    ]
    assert [c.body.get("flow_lpm") for c in done[:3]] == [2, 4, 6]
    assert all(g >= 15 * 60 for g in np.diff([c.ts for c in done]))


def test_staff_ignore_a_brief_dip():
    staff = Staff(np.random.default_rng(1), T0)
    done = run_staff(staff, 3, _state(spo2=80.0)) + run_staff(
        staff, 60, _state(spo2=97.0), T0 + 180
    )
    assert not [c for c in done if c.body["type"] == "oxygen"]


def test_staff_tocilizumab_at_grade_2_and_paracetamol_for_fever():
    staff = Staff(np.random.default_rng(2), T0)
    staff.see_temp(T0, 38.9)
    staff.see_nibp(T0, 86)
    staff.see_nibp(T0 + 900, 85)
    done = run_staff(staff, 180, _state(spo2=97.0))
    drugs: dict[str, float] = {}  # the first dose of each
    for c in done:
        if c.body["type"] == "medication":
            drugs.setdefault(c.body["drug"], c.ts)
    assert 30 * 60 <= drugs["tocilizumab"] - T0 <= 95 * 60
    assert drugs["paracetamol"] - T0 <= 50 * 60
    assert "crystalloid bolus" in drugs
    # the pressure stays low after fluids: norepinephrine, then (grade 3) dexamethasone
    pressor = [c for c in done if c.body["type"] == "vasopressor"]
    assert pressor[0].body == {
        "type": "vasopressor",
        "drug": "norepinephrine",
        "action": "start",
        "dose": 0.05,
    }
    assert pressor[0].ts > drugs["crystalloid bolus"]
    assert drugs["dexamethasone"] > pressor[0].ts


def test_staff_neuro_checks_every_8_to_12_hours_more_often_with_icans():
    staff = Staff(np.random.default_rng(3), T0)
    checks = [
        c.ts for c in run_staff(staff, 3 * 24 * 60, _state(spo2=97.0)) if c.body["type"] == "neuro"
    ]
    gaps = np.diff(checks) / HOUR
    assert len(checks) >= 6 and all(7.9 <= g <= 12.4 for g in gaps)
    staff = Staff(np.random.default_rng(3), T0)
    checks = [
        c
        for c in run_staff(staff, 24 * 60, _state(spo2=97.0, ice=5, acvpu="V"))
        if c.body["type"] in ("neuro", "medication")
    ]
    neuro = [c.ts for c in checks if c.body["type"] == "neuro"]
    assert all(g <= 2.4 for g in np.diff(neuro) / HOUR)
    assert any(c.body.get("drug") == "dexamethasone" for c in checks)


# -- patient + staff together ------------------------------------------------------------------


@pytest.mark.parametrize("cohort", ["lymphoma", "autoimmune"])
def test_realised_course_reaches_the_drawn_grade(cohort):
    """Under simulated care the true worst grade is the drawn one (give or take one), and
    an autoimmune patient never reaches grade 3."""
    opts = WardOptions(
        beds=16,
        days=10,
        start=T0,
        cohort=cohort,
        seed=21,
        mqtt=False,
        fast_interval_s=300,
        artefact_scale=0,
    )
    worse = 0
    for bed in build_beds(opts, T0):
        worst = max(
            o.truth["crs_grade"]
            for o in bed.stream()
            if o.kind == "truth" and "crs_grade" in o.truth
        )
        assert abs(worst - bed.patient.course.crs_grade) <= 1
        worse += worst != bed.patient.course.crs_grade
        if cohort == "autoimmune":
            assert worst <= 2
    assert worse <= 3
