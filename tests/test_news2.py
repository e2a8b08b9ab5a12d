"""NEWS2 (RCP 2017), per /work/shared/CLINICAL.md ("NEWS2"): every cut point of every
parameter on both sides, both SpO2 scales, the bands, and incomplete scores."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.clinical.news2 import BANDS, PARAMETERS, News2, news2
from monitor.clinical.snapshot import Snapshot
from monitor.clinical.thresholds import O2_DEVICES

# Every parameter present and scoring 0.
NORMAL = Snapshot(rr=16, spo2=97, o2_device="room_air", sbp=120, hr=70, acvpu="A", temp_c=37.0)


def score_of(**changes) -> News2:
    return news2(replace(NORMAL, **changes))


def test_normal_snapshot_scores_zero_and_is_complete():
    n = news2(NORMAL)
    assert (n.total, n.band, n.band_at_least, n.complete, n.missing) == (0, "low", "low", True, ())
    assert n.scores == dict.fromkeys(PARAMETERS, 0)


# Cut points on a continuous value: a reading belongs to the band whose upper cut it does
# not exceed (CLINICAL.md: "38.0 scores 0, anything above 38.0 up to 39.0 scores 1").
# fmt: off
CUT_POINTS = [
    # respiration rate: <= 8 -> 3, 9-11 -> 1, 12-20 -> 0, 21-24 -> 2, >= 25 -> 3
    *[
        ("rr", "rr", v, e)
        for v, e in [
            (0, 3), (8, 3), (8.5, 1), (9, 1), (11, 1), (11.5, 0), (12, 0), (20, 0),
            (20.5, 2), (21, 2), (24, 2), (24.5, 3), (25, 3), (60, 3),
        ]
    ],
    # systolic BP: <= 90 -> 3, 91-100 -> 2, 101-110 -> 1, 111-219 -> 0, >= 220 -> 3
    *[
        ("sbp", "sbp", v, e)
        for v, e in [
            (60, 3), (90, 3), (90.5, 2), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0),
            (219, 0), (219.5, 3), (220, 3), (260, 3),
        ]
    ],
    # pulse: <= 40 -> 3, 41-50 -> 1, 51-90 -> 0, 91-110 -> 1, 111-130 -> 2, >= 131 -> 3
    *[
        ("hr", "hr", v, e)
        for v, e in [
            (30, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1),
            (111, 2), (130, 2), (131, 3), (180, 3),
        ]
    ],
    # temperature: <= 35.0 -> 3, 35.1-36.0 -> 1, 36.1-38.0 -> 0, 38.1-39.0 -> 1, >= 39.1 -> 2
    *[
        ("temp_c", "temp", v, e)
        for v, e in [
            (34.0, 3), (35.0, 3), (35.05, 1), (35.1, 1), (36.0, 1), (36.05, 0), (36.1, 0),
            (38.0, 0), (38.05, 1), (38.1, 1), (39.0, 1), (39.05, 2), (39.1, 2), (41.0, 2),
        ]
    ],
    # SpO2 scale 1: <= 91 -> 3, 92-93 -> 2, 94-95 -> 1, >= 96 -> 0
    *[
        ("spo2", "spo2", v, e)
        for v, e in [
            (80, 3), (91, 3), (91.5, 2), (92, 2), (93, 2), (93.5, 1), (94, 1), (95, 1),
            (95.5, 0), (96, 0), (100, 0),
        ]
    ],
]
# fmt: on


@pytest.mark.parametrize("field, param, value, expected", CUT_POINTS)
def test_cut_points(field, param, value, expected):
    n = score_of(**{field: value})
    assert n.scores[param] == expected
    assert n.total == expected


# SpO2 scale 2, on air: <= 83 -> 3, 84-85 -> 2, 86-87 -> 1, 88-92 -> 0, >= 93 on air -> 0.
@pytest.mark.parametrize(
    "spo2, expected",
    [(80, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (100, 0)],
)
def test_scale_2_on_air(spo2, expected):
    n = score_of(spo2_scale=2, spo2=spo2)
    assert n.scores["spo2"] == expected
    assert n.scores["air_or_oxygen"] == 0


# SpO2 scale 2, on oxygen: 88-92 -> 0, 93-94 -> 1, 95-96 -> 2, >= 97 -> 3.
# fmt: off
SCALE_2_ON_OXYGEN = [
    (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (92.5, 1), (93, 1),
    (94, 1), (94.5, 2), (95, 2), (96, 2), (96.5, 3), (97, 3), (100, 3),
]
# fmt: on


@pytest.mark.parametrize("spo2, expected", SCALE_2_ON_OXYGEN)
def test_scale_2_on_oxygen(spo2, expected):
    n = score_of(spo2_scale=2, spo2=spo2, o2_device="nasal_cannula", o2_flow_lpm=2)
    assert n.scores["spo2"] == expected
    assert n.total == expected + 2  # plus 2 for oxygen


def test_scale_2_at_93_air_versus_oxygen():
    assert score_of(spo2_scale=2, spo2=93).scores["spo2"] == 0
    assert score_of(spo2_scale=2, spo2=93, o2_device="venturi").scores["spo2"] == 1
    assert score_of(spo2_scale=1, spo2=93, o2_device="venturi").scores["spo2"] == 2


@pytest.mark.parametrize(
    "spo2, missing", [(93, ("spo2", "air_or_oxygen")), (92, ("air_or_oxygen",))]
)
def test_scale_2_with_device_unknown(spo2, missing):
    # Above 92 on scale 2 the score depends on air or oxygen: unknown device, unknown score.
    n = score_of(spo2_scale=2, spo2=spo2, o2_device=None)
    assert n.missing == missing
    assert not n.complete


# CLINICAL.md: any oxygen device, blow-by included, counts as oxygen (2).
@pytest.mark.parametrize("device", O2_DEVICES)
def test_air_or_oxygen(device):
    expected = 0 if device == "room_air" else 2
    assert score_of(o2_device=device).scores["air_or_oxygen"] == expected


# CLINICAL.md: alert 0; new confusion, voice, pain, unresponsive 3.
@pytest.mark.parametrize("acvpu, expected", [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness(acvpu, expected):
    n = score_of(acvpu=acvpu)
    assert n.scores["consciousness"] == expected
    assert n.single_parameter_3 is (expected == 3)


# CLINICAL.md bands: 0-4 low; 3-4 with a single 3 low-medium; 5-6 medium; >= 7 high.
@pytest.mark.parametrize(
    "changes, total, band, single_3",
    [
        ({}, 0, "low", False),
        ({"hr": 95}, 1, "low", False),
        ({"hr": 115, "temp_c": 39.5}, 4, "low", False),
        ({"rr": 25}, 3, "low-medium", True),
        ({"rr": 25, "hr": 95}, 4, "low-medium", True),
        ({"rr": 25, "hr": 115}, 5, "medium", True),
        ({"rr": 22, "hr": 115, "temp_c": 39.5}, 6, "medium", False),
        ({"rr": 22, "hr": 115, "temp_c": 39.5, "sbp": 105}, 7, "high", False),
        ({"acvpu": "V", "sbp": 85, "rr": 30}, 9, "high", True),
    ],
)
def test_bands(changes, total, band, single_3):
    n = score_of(**changes)
    assert (n.total, n.band, n.band_at_least, n.single_parameter_3) == (total, band, band, single_3)
    assert n.complete and n.missing == ()


# CLINICAL.md: a NEWS2 with a parameter missing is incomplete and never shown as low.
@pytest.mark.parametrize(
    "changes, missing, band, at_least",
    [
        ({"temp_c": None}, ("temp",), None, None),
        ({"temp_c": None, "hr": 115}, ("temp",), None, None),
        ({"o2_device": None}, ("air_or_oxygen",), None, None),
        ({"acvpu": None, "rr": 25}, ("consciousness",), None, "low-medium"),
        ({"temp_c": None, "rr": 25, "hr": 115}, ("temp",), None, "medium"),
        ({"temp_c": None, "rr": 25, "hr": 115, "sbp": 105}, ("temp",), None, "medium"),
        ({"temp_c": None, "rr": 25, "hr": 115, "sbp": 95}, ("temp",), "high", "high"),
        ({"rr": None, "spo2": None, "hr": None}, ("rr", "spo2", "hr"), None, None),
    ],
)
def test_incomplete(changes, missing, band, at_least):
    n = score_of(**changes)
    assert not n.complete
    assert n.missing == missing
    assert (n.band, n.band_at_least) == (band, at_least)
    assert set(n.scores) == set(PARAMETERS) - set(missing)


def test_incomplete_reason_names_the_missing_parameter():
    assert score_of(temp_c=None).reasons[0] == "NEWS2 incomplete: temperature missing"


def test_spec_example_scores_by_the_table():
    # SPEC.md `score` example input. By the CLINICAL.md table it scores rr 22 -> 2, SpO2 93
    # -> 2, oxygen -> 2, systolic 96 -> 2, pulse 112 -> 2, alert -> 0, 38.4 C -> 1: 11, high
    # (the SPEC example output shows 5 / medium, which the table does not give).
    s = Snapshot(
        temp_c=38.4,
        hr=112,
        rr=22,
        spo2=93,
        sbp=96,
        map=70,
        acvpu="A",
        o2_device="nasal_cannula",
        o2_flow_lpm=3,
    )
    n = news2(s)
    assert n.scores == {
        "rr": 2,
        "spo2": 2,
        "air_or_oxygen": 2,
        "sbp": 2,
        "hr": 2,
        "consciousness": 0,
        "temp": 1,
    }
    assert (n.total, n.band) == (11, "high")


# --- properties ---------------------------------------------------------------------------


def maybe(strategy):
    return st.none() | strategy


snapshots = st.builds(
    Snapshot,
    rr=maybe(st.floats(0, 60)),
    spo2=maybe(st.floats(50, 100)),
    o2_device=maybe(st.sampled_from(O2_DEVICES)),
    sbp=maybe(st.floats(40, 280)),
    hr=maybe(st.floats(20, 220)),
    acvpu=maybe(st.sampled_from("ACVPU")),
    temp_c=maybe(st.floats(30, 43)),
    spo2_scale=st.sampled_from([1, 2]),
)
complete_snapshots = st.builds(
    Snapshot,
    rr=st.floats(0, 60),
    spo2=st.floats(50, 100),
    o2_device=st.sampled_from(O2_DEVICES),
    sbp=st.floats(40, 280),
    hr=st.floats(20, 220),
    acvpu=st.sampled_from("ACVPU"),
    temp_c=st.floats(30, 43),
    spo2_scale=st.sampled_from([1, 2]),
)


@settings(max_examples=300)
@given(snapshots)
def test_invariants(s):
    n = news2(s)
    assert n.total == sum(n.scores.values())
    assert n.complete == (not n.missing)
    assert set(n.scores) | set(n.missing) == set(PARAMETERS)
    if n.complete:
        assert n.band == n.band_at_least is not None
    else:
        assert n.band in (None, "high")
        assert "low" not in (n.band, n.band_at_least)


@settings(max_examples=300)
@given(snapshots, complete_snapshots)
def test_band_at_least_is_a_true_lower_bound(partial, filler):
    # Whatever the missing parameters turn out to be, the band is never below band_at_least.
    n = news2(partial)
    filled = {
        f: getattr(filler, f)
        for f in ("rr", "spo2", "o2_device", "sbp", "hr", "acvpu", "temp_c")
        if getattr(partial, f) is None
    }
    full = news2(replace(partial, **filled))
    assert full.complete
    floor = BANDS.index(n.band_at_least) if n.band_at_least else 0
    assert BANDS.index(full.band) >= floor
    if n.band is not None:
        assert full.band == n.band
    assert full.total >= n.total


# Normal centre of each parameter; moving away from it on the same side is "further from
# normal". SpO2 on scale 1 (and on scale 2 on air) only worsens downwards.
CENTRES = {"rr": 16.0, "sbp": 160.0, "hr": 70.0, "temp_c": 37.0}


@settings(max_examples=300)
@given(
    snapshots,
    st.sampled_from(sorted(CENTRES)),
    st.floats(0, 150),
    st.floats(0, 150),
    st.sampled_from([-1, 1]),
)
def test_further_from_normal_never_lowers_total(s, field, d1, d2, side):
    near, far = sorted((d1, d2))
    centre = CENTRES[field]
    a = news2(replace(s, **{field: centre + side * near}))
    b = news2(replace(s, **{field: centre + side * far}))
    assert b.total >= a.total


@settings(max_examples=300)
@given(snapshots, st.floats(0, 100), st.floats(0, 100))
def test_lower_spo2_never_lowers_total_below_scale_2_normal(s, x, y):
    hi, lo = max(x, y), min(x, y)
    if s.spo2_scale == 2 and s.o2_device not in (None, "room_air"):
        hi, lo = min(hi, 90.0), min(lo, 90.0)  # on oxygen, scale 2 also worsens above 92
    assert news2(replace(s, spo2=lo)).total >= news2(replace(s, spo2=hi)).total


@settings(max_examples=300)
@given(snapshots, st.floats(92.01, 100), st.floats(92.01, 100))
def test_scale_2_on_oxygen_higher_spo2_never_lowers_total(s, x, y):
    s = replace(s, spo2_scale=2, o2_device="hfnc")
    assert news2(replace(s, spo2=max(x, y))).total >= news2(replace(s, spo2=min(x, y))).total


@pytest.mark.parametrize(
    ("device", "flow", "fio2", "scored"),
    [(None, 4, None, 2), (None, None, 0.35, 2), ("room_air", 4, None, 0), ("hfnc", None, None, 2)],
)
def test_oxygen_a_device_reports_scores_as_oxygen(device, flow, fio2, scored):
    # docs/clinical-decisions.md: with no device recorded, a reported flow means oxygen
    s = score_of(o2_device=device, o2_flow_lpm=flow, fio2=fio2)
    assert s.scores["air_or_oxygen"] == scored and "air_or_oxygen" not in s.missing
