"""CRS grade: ASTCT (Lee 2019) and the project's decisions, per /work/shared/CLINICAL.md
("CRS grade"). Every boundary of the table and of each decision is tested on both sides."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.clinical.crs import NO_FEVER_COMPONENTS, crs_grade
from monitor.clinical.grade import Grade
from monitor.clinical.snapshot import Snapshot
from monitor.clinical.thresholds import O2_DEVICES

# Fever, normal blood pressure, no pressors, room air with a normal SpO2: grade 1.
FEVER = Snapshot(temp_c=38.4, sbp=120, map=85, vasopressors=(), o2_device="room_air", spo2=97)


def grade_of(**changes) -> Grade:
    return crs_grade(replace(FEVER, **changes))


def lowest(g: Grade) -> int:
    """The least severe grade still possible (0 when nothing is known)."""
    return g.grade if g.grade is not None else (g.at_least or 0)


# CLINICAL.md: fever is >= 38.0 C; 37.9 is not fever.
@pytest.mark.parametrize(
    "temp, expected",
    [(37.9, 0), (37.99, 0), (38.0, 1), (38.01, 1), (38.4, 1), (41.0, 1), (35.0, 0)],
)
def test_fever_threshold(temp, expected):
    g = grade_of(temp_c=temp)
    assert (g.grade, g.at_least) == (expected, expected)


def test_fever_reason_text():
    assert grade_of(temp_c=38.4).reasons == ("fever 38.4 C",)
    assert grade_of(temp_c=38).reasons == ("fever 38.0 C",)


# CLINICAL.md: fever is required; hypotension and hypoxia without it are not CRS.
@pytest.mark.parametrize(
    "changes",
    [
        {"sbp": 80},
        {"vasopressors": ("norepinephrine", "epinephrine")},
        {"o2_device": "cpap"},
        {"o2_device": "room_air", "spo2": 85},
    ],
)
def test_no_fever_is_grade_0_even_with_hypotension_or_hypoxia(changes):
    g = grade_of(temp_c=37.5, **changes)
    assert (g.grade, g.at_least) == (0, 0)
    assert g.reasons == ("no fever: temperature 37.5 C", NO_FEVER_COMPONENTS)


def test_no_fever_without_findings_has_one_reason():
    assert grade_of(temp_c=37.0).reasons == ("no fever: temperature 37.0 C",)


# CLINICAL.md "Missing data": no temperature (and fever not masked) -> unknown, not 0.
@pytest.mark.parametrize(
    "changes",
    [{}, {"vasopressors": ("norepinephrine",)}, {"o2_device": "ventilator"}, {"sbp": 70}],
)
def test_temperature_unknown_is_ungraded(changes):
    g = grade_of(temp_c=None, **changes)
    assert (g.grade, g.at_least) == (None, None)
    assert g.reasons[0] == "temperature unknown"


# CLINICAL.md: after an antipyretic or anti-cytokine therapy fever is no longer required;
# hypotension and hypoxia set the grade. Once they have resolved, CRS has resolved: 0
# (fever alone still makes 1; an unknown temperature leaves 0 or 1 open).
@pytest.mark.parametrize(
    "temp, changes, expected",
    [
        (37.0, {}, 0),
        (None, {}, None),
        (38.5, {}, 1),
        (37.0, {"o2_device": "nasal_cannula", "o2_flow_lpm": 3}, 2),
        (36.5, {"sbp": 85}, 2),
        (None, {"vasopressors": ("norepinephrine",)}, 3),
        (37.0, {"o2_device": "bipap"}, 4),
        (39.0, {"o2_device": "simple_face_mask"}, 3),
    ],
)
def test_masked_fever_is_not_required(temp, changes, expected):
    masked = grade_of(temp_c=temp, fever_masked=True, **changes)
    assert masked.grade == expected
    if temp is None or temp < 38.0:
        assert "fever masked" in masked.reasons[0]
        unmasked = grade_of(temp_c=temp, fever_masked=False, **changes)
        if expected:
            assert unmasked.grade != expected


# CLINICAL.md decision: adult hypotension is systolic < 90 or MAP < 65 mmHg.
@pytest.mark.parametrize(
    "sbp, mean, dbp, expected, at_least",
    [
        (89, 80, None, 2, 2),
        (90, 80, None, 1, 1),
        (89.9, 80, None, 2, 2),
        (120, 64, None, 2, 2),
        (120, 65, None, 1, 1),
        (120, 64.9, None, 2, 2),
        (89, None, None, 2, 2),  # one low pressure is enough, the other may be unknown
        (None, 64, None, 2, 2),
        (None, None, None, None, 1),  # could be 1 or 2
        (120, None, None, None, 1),  # MAP unknown: could still be < 65
        (None, 80, None, None, 1),  # systolic unknown: could still be < 90
        (120, None, 70, 1, 1),  # MAP estimated from sbp/dbp: 86.7
        (95, None, 50, 1, 1),  # estimated 65.0: not below 65
        (95, None, 49, 2, 2),  # estimated 64.3
    ],
)
def test_hypotension_cut_points(sbp, mean, dbp, expected, at_least):
    g = grade_of(sbp=sbp, map=mean, dbp=dbp)
    assert (g.grade, g.at_least) == (expected, at_least)


def test_hypotension_reasons():
    assert grade_of(sbp=85).reasons == ("fever 38.4 C", "hypotension: systolic 85 mmHg")
    assert grade_of(sbp=None, map=None).reasons == ("fever 38.4 C", "blood pressure unknown")
    both = grade_of(sbp=85, map=60).reasons[1]
    assert both == "hypotension: systolic 85 mmHg, MAP 60 mmHg"


# CLINICAL.md decision: sustained (two readings or one standing 120 s); the daemon's
# judgement, when given, overrides the face value of this snapshot's readings.
@pytest.mark.parametrize(
    "sustained, sbp, mean, expected",
    [
        (False, 80, 55, 1),
        (True, 120, 85, 2),
        (True, None, None, 2),
        (False, None, None, 1),
        (None, 80, 55, 2),
        (None, 120, 85, 1),
    ],
)
def test_hypotension_sustained_overrides_face_values(sustained, sbp, mean, expected):
    g = grade_of(hypotension_sustained=sustained, sbp=sbp, map=mean)
    assert g.grade == expected


@pytest.mark.parametrize(
    "sustained, spo2, expected",
    [(False, 85, 1), (True, 95, 2), (True, None, 2), (False, None, 1), (None, 85, 2)],
)
def test_hypoxaemia_sustained_overrides_face_values(sustained, spo2, expected):
    assert grade_of(hypoxaemia_sustained=sustained, spo2=spo2).grade == expected


# CLINICAL.md: one vasopressor -> 3, several -> 4, vasopressin not counted; decision:
# vasopressin alone is one vasopressor.
@pytest.mark.parametrize(
    "pressors, expected, reason",
    [
        ((), 1, None),
        (("norepinephrine",), 3, "1 vasopressor: norepinephrine"),
        (("vasopressin",), 3, "1 vasopressor: vasopressin"),
        (
            ("vasopressin", "norepinephrine"),
            3,
            "1 vasopressor: norepinephrine (vasopressin not counted)",
        ),
        (("norepinephrine", "epinephrine"), 4, "2 vasopressors: norepinephrine, epinephrine"),
        (("norepinephrine", "vasopressin", "phenylephrine"), 4, None),
        (("Norepinephrine", "norepinephrine "), 3, "1 vasopressor: norepinephrine"),
    ],
)
def test_vasopressors(pressors, expected, reason):
    g = grade_of(vasopressors=pressors)
    assert g.grade == expected
    if reason:
        assert reason in g.reasons


def test_vasopressor_with_blood_pressure_unknown_is_decided():
    g = grade_of(vasopressors=("norepinephrine",), sbp=None, map=None)
    assert (g.grade, g.at_least) == (3, 3)


@pytest.mark.parametrize(
    "sbp, at_least",
    [(120, 1), (85, 2)],  # pressors unknown: 0/3/4 with normal BP, 2/3/4 with hypotension
)
def test_vasopressors_unknown(sbp, at_least):
    g = grade_of(vasopressors=None, sbp=sbp)
    assert (g.grade, g.at_least) == (None, at_least)
    assert "vasopressors unknown" in g.reasons


# CLINICAL.md: the device beats the flow; nasal cannula <= 6 L/min low-flow (2), > 6 high (3).
@pytest.mark.parametrize(
    "device, flow, expected, at_least",
    [
        ("blow_by", None, 2, 2),
        ("nasal_cannula", 1, 2, 2),
        ("nasal_cannula", 6, 2, 2),
        ("nasal_cannula", 6.5, 3, 3),
        ("nasal_cannula", 7, 3, 3),
        ("nasal_cannula", None, None, 2),  # unknown flow: 2 or 3, never assumed low
        ("simple_face_mask", 5, 3, 3),
        ("simple_face_mask", None, 3, 3),
        ("venturi", 8, 3, 3),
        ("non_rebreather", 15, 3, 3),
        ("hfnc", 40, 3, 3),
        ("cpap", None, 4, 4),
        ("bipap", None, 4, 4),
        ("ventilator", None, 4, 4),
    ],
)
def test_oxygen_devices(device, flow, expected, at_least):
    g = grade_of(o2_device=device, o2_flow_lpm=flow)
    assert (g.grade, g.at_least) == (expected, at_least)


def test_oxygen_reasons():
    assert grade_of(o2_device="nasal_cannula", o2_flow_lpm=3).reasons[1] == (
        "oxygen by nasal cannula 3 L/min"
    )
    assert "flow unknown" in grade_of(o2_device="nasal_cannula", o2_flow_lpm=None).reasons[1]
    assert grade_of(o2_device="cpap").reasons[1] == "oxygen by CPAP"


# CLINICAL.md decision: SpO2 < 90 % on room air before oxygen is recorded -> 2.
@pytest.mark.parametrize(
    "spo2, expected, at_least", [(89, 2, 2), (89.9, 2, 2), (90, 1, 1), (None, None, 1)]
)
def test_spo2_on_room_air(spo2, expected, at_least):
    g = grade_of(spo2=spo2)
    assert (g.grade, g.at_least) == (expected, at_least)
    if expected == 2:
        assert "hypoxaemia on room air, oxygen not yet recorded" in g.reasons[1]


@pytest.mark.parametrize(
    "spo2, sustained, at_least", [(85, None, 2), (95, None, 1), (None, True, 2), (85, False, 1)]
)
def test_oxygen_device_unknown(spo2, sustained, at_least):
    g = grade_of(o2_device=None, spo2=spo2, hypoxaemia_sustained=sustained)
    assert (g.grade, g.at_least) == (None, at_least)
    assert "oxygen device unknown" in g.reasons


def test_unknown_device_name_is_an_error_not_air():
    with pytest.raises(ValueError, match="mask"):
        grade_of(o2_device="mask")


# CLINICAL.md: the more severe of hypotension and hypoxia sets the grade.
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"o2_device": "nasal_cannula", "o2_flow_lpm": 3, "sbp": 85}, 2),
        ({"o2_device": "nasal_cannula", "o2_flow_lpm": 3, "vasopressors": ("dopamine",)}, 3),
        ({"o2_device": "cpap", "vasopressors": ("dopamine",)}, 4),
        ({"o2_device": "hfnc", "vasopressors": ("dopamine", "epinephrine")}, 4),
        ({"o2_device": "ventilator", "sbp": 85}, 4),
    ],
)
def test_more_severe_component_wins(changes, expected):
    assert grade_of(**changes).grade == expected


def test_fever_with_everything_else_unknown():
    g = crs_grade(Snapshot(temp_c=38.5))
    assert (g.grade, g.at_least) == (None, 1)
    assert g.reasons[0] == "fever 38.5 C"


def test_spec_example_reasons_come_first():
    # SPEC.md `score` example: fever 38.4 C on a nasal cannula at 3 L/min.
    g = grade_of(o2_device="nasal_cannula", o2_flow_lpm=3, sbp=96, map=70)
    assert g.grade == 2
    assert g.reasons == ("fever 38.4 C", "oxygen by nasal cannula 3 L/min")


# --- properties: a worse value never lowers a grade ----------------------------------------

DEVICE_ORDER = (
    ("room_air",),
    ("blow_by",),
    ("nasal_cannula",),
    ("simple_face_mask", "venturi", "non_rebreather", "hfnc"),
    ("cpap", "bipap", "ventilator"),
)
DRUGS = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin")


def maybe(strategy):
    return st.none() | strategy


snapshots = st.builds(
    Snapshot,
    temp_c=maybe(st.floats(35, 42)),
    sbp=maybe(st.floats(40, 200)),
    dbp=maybe(st.floats(20, 120)),
    map=maybe(st.floats(30, 150)),
    spo2=maybe(st.floats(60, 100)),
    o2_device=maybe(st.sampled_from(O2_DEVICES)),
    o2_flow_lpm=maybe(st.floats(0, 60)),
    vasopressors=maybe(st.lists(st.sampled_from(DRUGS), max_size=3).map(tuple)),
    fever_masked=st.booleans(),
    hypotension_sustained=maybe(st.booleans()),
    hypoxaemia_sustained=maybe(st.booleans()),
)


def assert_not_lower(better: Snapshot, worse: Snapshot) -> None:
    b, w = crs_grade(better), crs_grade(worse)
    assert lowest(w) >= lowest(b), (b, w)
    if b.grade is not None and w.grade is not None:
        assert w.grade >= b.grade, (b, w)


@settings(max_examples=300)
@given(snapshots, st.floats(35, 42), st.floats(0, 4))
def test_raising_temperature_never_lowers(s, t, rise):
    assert_not_lower(replace(s, temp_c=t), replace(s, temp_c=t + rise))


@settings(max_examples=300)
@given(snapshots, st.floats(40, 200), st.floats(0, 60), st.sampled_from(["sbp", "map", "dbp"]))
def test_lowering_pressure_never_lowers(s, value, drop, field):
    assert_not_lower(replace(s, **{field: value}), replace(s, **{field: value - drop}))


@settings(max_examples=300)
@given(snapshots, st.floats(60, 100), st.floats(0, 30))
def test_lowering_spo2_never_lowers(s, value, drop):
    assert_not_lower(replace(s, spo2=value), replace(s, spo2=max(0.0, value - drop)))


@settings(max_examples=300)
@given(snapshots, st.data())
def test_escalating_oxygen_device_never_lowers(s, data):
    lo = data.draw(st.integers(0, len(DEVICE_ORDER) - 1))
    hi = data.draw(st.integers(lo, len(DEVICE_ORDER) - 1))
    a = data.draw(st.sampled_from(DEVICE_ORDER[lo]))
    b = data.draw(st.sampled_from(DEVICE_ORDER[hi]))
    assert_not_lower(replace(s, o2_device=a), replace(s, o2_device=b))


@settings(max_examples=300)
@given(snapshots, st.lists(st.sampled_from(DRUGS), max_size=3), st.sampled_from(DRUGS))
def test_adding_a_vasopressor_never_lowers(s, drugs, extra):
    assert_not_lower(
        replace(s, vasopressors=tuple(drugs)), replace(s, vasopressors=(*drugs, extra))
    )


@settings(max_examples=300)
@given(snapshots)
def test_decided_grade_is_its_own_lower_bound(s):
    g = crs_grade(s)
    if g.grade is not None:
        assert g.at_least == g.grade
    else:
        assert g.at_least is None or 1 <= g.at_least <= 4
    assert g.reasons and all(isinstance(r, str) and r for r in g.reasons)


def test_hypoxaemia_on_spo2_scale_2_is_below_the_patients_own_target():
    """CLINICAL.md (revised): on scale 2 (target 88-92 %) room-air SpO2 88-89 is the
    patient's own range, not CRS hypoxaemia; < 88 % is."""
    assert grade_of(spo2=89, spo2_scale=2).grade == 1
    assert grade_of(spo2=88, spo2_scale=2).grade == 1
    assert grade_of(spo2=87, spo2_scale=2).grade == 2
    assert grade_of(spo2=89, spo2_scale=1).grade == 2
    assert grade_of(spo2=88, spo2_scale=2, hypoxaemia_sustained=False).grade == 1


# docs/clinical-decisions.md, "Oxygen a device reports": no device recorded, a flow or an
# FiO2 above air reported by a device -> oxygen of an unknown device, at least grade 2.
@pytest.mark.parametrize(
    ("flow", "fio2", "at_least"),
    [(6, None, 2), (None, 0.4, 2), (0.5, 0.21, 2), (0, 0.21, None), (None, None, None)],
)
def test_oxygen_a_device_reports_with_no_device_recorded(flow, fio2, at_least):
    g = grade_of(o2_device=None, o2_flow_lpm=flow, fio2=fio2)
    if at_least is None:  # nothing says oxygen: the device is unknown, grade 1 possible
        assert lowest(g) == 1
    else:
        assert g.grade is None and g.at_least == at_least
        assert any(r.startswith("oxygen given") and "device unknown" in r for r in g.reasons)


def test_a_recorded_device_beats_the_reported_flow():
    assert grade_of(o2_device="room_air", o2_flow_lpm=6).grade == 1
    assert grade_of(o2_device="nasal_cannula", o2_flow_lpm=7).grade == 3
