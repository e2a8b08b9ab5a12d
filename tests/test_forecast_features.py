"""forecast.features: incremental per-patient features, no future, gated baselines.

Timelines are built with the daemon's BedState (one fast reading a minute, blood pressure
every 30 min, temperature hourly) and read as the daemon does: `assess(t)` every 5 min.
"""

from __future__ import annotations

import json
import random

import pytest

from forecast.features import (
    BASE_MIN_S,
    FEATURES,
    PatientFeatures,
    cohort,
    o2_level,
    temp_slope,
)
from monitor import config
from monitor.clinical.snapshot import Snapshot
from monitor.ingest.messages import Admission, Observation
from monitor.state.bedstate import BedState

T0 = 1_767_571_200.0  # 2026-01-05T00:00Z
H = 3600.0
ADM = Admission(
    "P1",
    T0,
    age=61,
    product="axicabtagene ciloleucel",
    indication="diffuse large B-cell lymphoma",
    infusion_ts=T0 - 12 * H,
)
WINDOWS = config.from_dict({}).windows()


def calm(t: float) -> dict:
    return {"hr": 80, "rr": 15, "spo2": 97, "sbp": 120, "dbp": 75, "map": 90, "temp_c": 36.8}


def readings(vitals, start: float, end: float) -> list[Observation]:
    """Fast vitals each minute, BP each 30 min, temperature and ACVPU hourly."""
    out = []
    for k in range(int((end - start) // 60)):
        t = start + 60 * k
        v = vitals(t)
        values = {n: v[n] for n in ("hr", "rr", "spo2")}
        if k % 30 == 0:
            values.update({n: v[n] for n in ("sbp", "dbp", "map")})
        if k % 60 == 0:
            values.update(temp_c=v["temp_c"], acvpu="A")
        out.append(Observation(t, values))
    return out


def run(observations, until: float, step: float = 300.0, keep: int = 16, early=()) -> list[dict]:
    """x every `step` from T0 + step to `until`; each of `observations` reaches the bed
    when the clock reaches its time, `early` ones before anything."""
    bed = BedState(ADM, WINDOWS, keep=keep)
    for obs in early:
        bed.add_observation(obs)
    waiting = sorted(observations, key=lambda o: o.ts, reverse=True)
    f = PatientFeatures(ADM)
    xs = []
    t = T0 + step
    while t <= until:
        while waiting and waiting[-1].ts <= t:
            bed.add_observation(waiting.pop())
        a = bed.assess(t)
        n = a.news2
        xs.append(
            f.update(
                a.snapshot,
                t,
                news2=n.total if n.complete else None,
                temp_ts=a.vitals["temp_c"].ts,
            )
        )
        t += step
    return xs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_readings_after_t_do_not_change_x_at_t(seed):
    """x(t) for every t up to 6 h is the same whether or not the bed already holds readings
    timestamped after 6 h (wild ones, in any order). The bed keeps every reading here, so
    that its bounded window (older readings rotated out: unknown, not future) is not what
    is tested."""
    rng = random.Random(seed)

    def wild(t):
        return {
            "hr": rng.uniform(30, 180),
            "rr": rng.uniform(5, 40),
            "spo2": rng.uniform(70, 100),
            "sbp": rng.uniform(60, 200),
            "dbp": 50,
            "map": rng.uniform(40, 120),
            "temp_c": round(rng.uniform(35, 41), 1),
        }

    def plausible(t):
        return {
            "hr": rng.gauss(85, 6),
            "rr": rng.gauss(16, 2),
            "spo2": rng.gauss(97, 1),
            "sbp": rng.gauss(118, 8),
            "dbp": 70,
            "map": rng.gauss(88, 5),
            "temp_c": round(rng.gauss(37.2, 0.4), 1),
        }

    past = readings(plausible, T0, T0 + 6 * H)
    future = readings(wild, T0 + 6 * H + 60, T0 + 9 * H)
    rng.shuffle(future)  # they may arrive in any order, before or after the past ones
    without = run(past, T0 + 6 * H, keep=100_000)
    with_future = run(past, T0 + 6 * H, keep=100_000, early=future)
    assert without == with_future
    assert len(without) == 72 and "hr_delta" in without[-1] and "temp_slope" in without[-1]


def test_an_update_older_than_the_last_changes_nothing():
    f = PatientFeatures(ADM)
    s = Snapshot(hr=80, sbp=120, map=90, temp_c=36.8)
    for k in range(30):
        f.update(s, T0 + 300 * k)
    before = json.dumps(f.to_dict())
    x = f.update(Snapshot(hr=150, sbp=70, map=50, temp_c=39.9), T0 + 300 * 10)
    assert json.dumps(f.to_dict()) == before
    assert x["temp_max"] == 36.8


def test_baseline_learns_before_the_fever_and_is_frozen_during_and_after_it():
    def vitals(t):
        h = (t - T0) / H
        if h < 3:
            return calm(t)
        if h < 7:  # fever with tachycardia and a falling pressure
            return {**calm(t), "hr": 125, "sbp": 96, "map": 70, "temp_c": 38.6}
        return {**calm(t), "hr": 100, "temp_c": 37.0}  # after it

    xs = run(readings(vitals, T0, T0 + 12 * H), T0 + 12 * H)
    at = {round(k * 5 / 60, 2): x for k, x in enumerate(xs, 1)}
    assert at[3.0]["hr_delta"] == pytest.approx(0.0, abs=0.5)  # baseline ~80
    base = 80.0 - at[3.0]["hr_delta"]
    assert at[6.0]["hr"] - at[6.0]["hr_delta"] == pytest.approx(base)  # not moved by fever
    assert at[6.0]["hr_delta"] == pytest.approx(45.0, abs=0.5)
    assert at[6.0]["sbp_delta"] == pytest.approx(-24.0, abs=0.5)
    assert at[12.0]["hr_delta"] == pytest.approx(20.0, abs=0.5)  # nor after it


def test_baseline_without_fever_follows_the_patient():
    def vitals(t):
        return {**calm(t), "hr": 80 if t - T0 < 3 * H else 100}

    xs = run(readings(vitals, T0, T0 + 12 * H), T0 + 12 * H)
    assert xs[-1]["hr_delta"] < 12.0  # 100 is this patient's normal now


def test_baseline_is_absent_until_it_has_learned_an_hour():
    xs = run(readings(calm, T0, T0 + 2 * H), T0 + 2 * H)
    learned_from = T0 + 300 + BASE_MIN_S  # the first update, then an hour
    for k, x in enumerate(xs, 1):
        t = T0 + 300 * k
        assert ("hr_delta" in x) == (t >= learned_from)


@pytest.mark.parametrize("temps, sign", [((37.0, 37.5, 38.1), 1), ((38.9, 38.4, 37.8), -1)])
def test_temperature_slope_sign(temps, sign):
    f = PatientFeatures(ADM)
    for i, c in enumerate(temps):
        x = f.update(Snapshot(temp_c=c, hr=90), T0 + i * H, temp_ts=T0 + i * H)
    assert x["temp_slope"] * sign > 0
    assert abs(x["temp_slope"]) == pytest.approx(abs(temps[-1] - temps[0]) / 2, rel=0.05)


def test_temperature_slope_needs_two_recent_readings():
    assert temp_slope([], T0) is None
    assert temp_slope([[T0, 37.0]], T0) is None
    assert temp_slope([[T0, 37.0], [T0 + 600, 37.5]], T0 + 600) is None  # 10 min apart
    assert temp_slope([[T0, 37.0], [T0 + H, 38.0]], T0 + 7.5 * H) is None  # stale
    assert temp_slope([[T0, 37.0], [T0 + 5 * H, 38.0]], T0 + 5 * H) == pytest.approx(0.2)


def test_the_same_temperature_reading_counts_once():
    f = PatientFeatures(ADM)
    for k in range(12):  # one reading at T0 seen at every update
        f.update(Snapshot(temp_c=37.2, hr=80), T0 + 300 * k, temp_ts=T0)
    assert len(f.temps) == 1


def test_missing_values_are_absent_never_zero():
    f = PatientFeatures(Admission("P2", T0))
    x = f.update(Snapshot(), T0)
    assert x == {"prior_grade2": 0.0}
    x = f.update(Snapshot(hr=90, o2_device=None, vasopressors=None), T0 + 60)
    for name in (
        "temp_c",
        "sbp",
        "sbp_delta",
        "shock_index",
        "spo2",
        "o2_level",
        "pressor",
        "news2",
        "age",
        "autoimmune",
        "hours_since_infusion",
    ):
        assert name not in x
    assert set(x) <= set(FEATURES)


def test_oxygen_and_pressors():
    f = PatientFeatures(ADM)
    x = f.update(
        Snapshot(
            spo2=93, o2_device="nasal_cannula", o2_flow_lpm=4, vasopressors=("norepinephrine",)
        ),
        T0,
    )
    assert (x["o2_level"], x["pressor"], x["spo2"]) == (1.0, 1.0, 93.0)
    assert [
        o2_level(d, fl)
        for d, fl in (
            ("room_air", None),
            ("nasal_cannula", 8),
            ("simple_face_mask", 5),
            ("hfnc", 40),
            ("cpap", None),
            (None, None),
            ("blow_by", None),
        )
    ] == [0, 2, 2, 2, 3, None, 1]


def test_shock_index_and_static_features():
    x = PatientFeatures(ADM).update(Snapshot(hr=120, sbp=100), T0 + 6 * H)
    assert x["shock_index"] == pytest.approx(1.2)
    assert x["hours_since_infusion"] == pytest.approx(18.0)
    assert (x["age"], x["autoimmune"]) == (61.0, 0.0)


@pytest.mark.parametrize(
    "indication, product, expected",
    [
        ("systemic lupus erythematosus", "CD19 CAR-T (academic)", 1.0),
        ("idiopathic inflammatory myositis", None, 1.0),
        ("systemic sclerosis", None, 1.0),
        ("diffuse large B-cell lymphoma", "axicabtagene ciloleucel", 0.0),
        ("B-ALL", None, 0.0),
        (None, "Tisagenlecleucel", 0.0),
        (None, "CD19 CAR-T (academic)", None),
        (None, None, None),
    ],
)
def test_cohort_mapping(indication, product, expected):
    assert cohort(indication, product) == expected


def test_state_round_trips_through_json_and_is_small():
    def vitals(t):
        return {**calm(t), "temp_c": 36.8 + (t - T0) / H * 0.1}

    obs = readings(vitals, T0, T0 + 20 * H)
    bed = BedState(ADM, WINDOWS)
    f = PatientFeatures(ADM)
    for i, o in enumerate(obs):
        bed.add_observation(o)
        if i == 600:  # half way: persist, restore, carry on with both
            g = PatientFeatures.from_dict(json.loads(json.dumps(f.to_dict())))
        a = bed.assess(o.ts)
        x = f.update(a.snapshot, o.ts, temp_ts=a.vitals["temp_c"].ts)
        if i >= 600:
            assert g.update(a.snapshot, o.ts, temp_ts=a.vitals["temp_c"].ts) == x
    assert len(json.dumps(f.to_dict())) < 1500
