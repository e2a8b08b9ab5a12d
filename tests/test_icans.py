"""ICANS grade: ASTCT (Lee 2019) and the project's decisions, per
CLINICAL.md ("ICANS grade"). The most severe domain sets the grade; unknowns follow
monitor/clinical/grade.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.clinical.grade import Grade
from monitor.clinical.icans import icans_grade, icans_inputs
from monitor.clinical.snapshot import Snapshot

AWAKE = Snapshot(ice_score=10, acvpu="A")


def grade_of(**changes) -> Grade:
    return icans_grade(replace(AWAKE, **changes))


def pair(g: Grade) -> tuple[int | None, int | None]:
    return g.grade, g.at_least


# CLINICAL.md: ICE 7-9 -> 1, 3-6 -> 2, 0-2 -> 3, 0 and unarousable -> 4; 10 and alert -> 0.
@pytest.mark.parametrize(
    "ice, acvpu, expected",
    [
        (10, "A", 0),
        (9, "A", 1),
        (7, "A", 1),
        (6, "A", 2),
        (3, "A", 2),
        (2, "A", 3),
        (0, "A", 3),
        (0, "U", 4),
    ],
)
def test_ice_score_bands(ice, acvpu, expected):
    assert pair(grade_of(ice_score=ice, acvpu=acvpu)) == (expected, expected)


def test_ice_score_outside_0_10_is_an_error():
    with pytest.raises(ValueError):
        grade_of(ice_score=11)


# CLINICAL.md: consciousness from ACVPU: V -> 2, P -> 3, U -> 4; A and C (confusion shows in
# the ICE score) -> 0 for this domain.
@pytest.mark.parametrize(
    "acvpu, expected, reason",
    [
        ("A", 0, "alert (A)"),
        ("C", 0, "new confusion (C)"),
        ("V", 2, "wakes to voice (V)"),
        ("P", 3, "wakes only to touch or pain (P)"),
        ("U", 4, "unarousable (U)"),
    ],
)
def test_acvpu_mapping(acvpu, expected, reason):
    g = grade_of(acvpu=acvpu)
    assert pair(g) == (expected, expected)
    assert g.reasons == ("ICE score 10/10", reason)


def test_unknown_acvpu_letter_is_an_error():
    with pytest.raises(ValueError):
        grade_of(acvpu="X")


@pytest.mark.parametrize(
    "ice, acvpu, expected",
    [
        (10, None, (0, 0)),  # the patient answered everything: awake
        (8, None, (None, 1)),  # answered, but may have needed waking by voice or touch
        (4, None, (None, 2)),
        (0, None, (None, 3)),  # ICE 0: unarousable (4) not excluded
        (None, "V", (None, 2)),  # ICE unknown could make it 3
        (None, "P", (3, 3)),  # ICE domain can add nothing above 3
        (None, "U", (4, 4)),
        (None, "A", (None, None)),  # no ICE score and nothing else abnormal: unknown
        (None, None, (None, None)),
    ],
)
def test_unknown_ice_or_consciousness(ice, acvpu, expected):
    assert pair(grade_of(ice_score=ice, acvpu=acvpu)) == expected


def test_unknowns_are_named_in_reasons():
    g = icans_grade(Snapshot())
    assert g.reasons == ("ICE score unknown", "consciousness (ACVPU) unknown")


# CLINICAL.md: any seizure that resolves rapidly -> 3, prolonged (> 5 min) or repetitive -> 4;
# decision: a seizure flag without duration is 3.
@pytest.mark.parametrize(
    "seizure, prolonged, expected",
    [
        (True, None, 3),
        (True, False, 3),
        (True, True, 4),
        (None, True, 4),
        (False, None, 0),
        (False, False, 0),
        (None, None, 0),
    ],
)
def test_seizure(seizure, prolonged, expected):
    g = grade_of(seizure=seizure, seizure_prolonged=prolonged)
    assert pair(g) == (expected, expected)
    if expected:
        assert "seizure" in g.reasons[-1]


@pytest.mark.parametrize("weak, expected", [(True, 4), (False, 0), (None, 0)])
def test_motor_weakness(weak, expected):
    g = grade_of(motor_weakness=weak)
    assert g.grade == expected
    if weak:
        assert "deep focal motor weakness" in g.reasons


@pytest.mark.parametrize("edema, expected", [("focal", 3), ("diffuse", 4), (None, 0)])
def test_cerebral_edema(edema, expected):
    g = grade_of(cerebral_edema=edema)
    assert g.grade == expected
    if edema:
        assert f"{edema} cerebral oedema" in g.reasons


def test_unknown_edema_value_is_an_error():
    with pytest.raises(ValueError):
        grade_of(cerebral_edema="severe")


# CLINICAL.md: the most severe domain sets the grade.
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"ice_score": 8, "acvpu": "V"}, 2),
        ({"ice_score": 8, "cerebral_edema": "focal"}, 3),
        ({"ice_score": 5, "seizure": True}, 3),
        ({"ice_score": 2, "motor_weakness": True}, 4),
        ({"ice_score": 9, "acvpu": "P", "cerebral_edema": "diffuse"}, 4),
    ],
)
def test_most_severe_domain_wins(changes, expected):
    assert grade_of(**changes).grade == expected


def test_reasons_name_each_contributing_domain():
    g = grade_of(ice_score=5, acvpu="V", seizure=True, cerebral_edema="focal")
    assert g.reasons == ("ICE score 5/10", "wakes to voice (V)", "seizure", "focal cerebral oedema")


def test_seizure_with_ice_unknown_is_decided_when_alert():
    # ICE unknown can give at most 3; an alert patient with a seizure is 3 whatever the ICE.
    assert pair(grade_of(ice_score=None, seizure=True)) == (3, 3)


# --- properties: a worse value never lowers a grade ----------------------------------------

ACVPU_ORDER = (("A", "C"), ("V",), ("P",), ("U",))

snapshots = st.builds(
    Snapshot,
    ice_score=st.none() | st.integers(0, 10),
    acvpu=st.none() | st.sampled_from("ACVPU"),
    seizure=st.none() | st.booleans(),
    seizure_prolonged=st.none() | st.booleans(),
    motor_weakness=st.none() | st.booleans(),
    cerebral_edema=st.sampled_from([None, "focal", "diffuse"]),
)


def lowest(g: Grade) -> int:
    return g.grade if g.grade is not None else (g.at_least or 0)


def assert_not_lower(better: Snapshot, worse: Snapshot) -> None:
    b, w = icans_grade(better), icans_grade(worse)
    assert lowest(w) >= lowest(b), (b, w)
    if b.grade is not None and w.grade is not None:
        assert w.grade >= b.grade, (b, w)


@settings(max_examples=300)
@given(snapshots, st.integers(0, 10), st.integers(0, 10))
def test_lowering_ice_never_lowers(s, a, b):
    hi, lo = max(a, b), min(a, b)
    assert_not_lower(replace(s, ice_score=hi), replace(s, ice_score=lo))


@settings(max_examples=300)
@given(snapshots, st.data())
def test_deeper_consciousness_never_lowers(s, data):
    lo = data.draw(st.integers(0, len(ACVPU_ORDER) - 1))
    hi = data.draw(st.integers(lo, len(ACVPU_ORDER) - 1))
    a = data.draw(st.sampled_from(ACVPU_ORDER[lo]))
    b = data.draw(st.sampled_from(ACVPU_ORDER[hi]))
    assert_not_lower(replace(s, acvpu=a), replace(s, acvpu=b))


@settings(max_examples=300)
@given(
    snapshots,
    st.sampled_from(
        [
            {"seizure": True},
            {"seizure_prolonged": True},
            {"motor_weakness": True},
            {"cerebral_edema": "focal"},
        ]
    ),
)
def test_adding_a_finding_never_lowers(s, finding):
    if finding.get("cerebral_edema") == "focal" and s.cerebral_edema == "diffuse":
        return  # focal after diffuse is an improvement, not a new finding
    assert_not_lower(s, replace(s, **finding))


@settings(max_examples=300)
@given(snapshots)
def test_grade_and_bound_are_consistent(s):
    g = icans_grade(s)
    if g.grade is not None:
        assert g.at_least == g.grade and 0 <= g.grade <= 4
    else:
        assert g.at_least is None or 1 <= g.at_least <= 4


_NEURO = st.fixed_dictionaries(
    {
        "ice_score": st.none() | st.integers(0, 10),
        "acvpu": st.sampled_from((None, "A", "C", "V", "P", "U")),
        "seizure": st.sampled_from((None, False, True)),
        "seizure_prolonged": st.sampled_from((None, False, True)),
        "motor_weakness": st.sampled_from((None, False, True)),
        "cerebral_edema": st.sampled_from((None, "focal", "diffuse")),
    }
)
_VITALS = st.fixed_dictionaries(
    {
        "temp_c": st.none() | st.sampled_from((36.5, 38.0, 39.5)),
        "hr": st.none() | st.sampled_from((40.0, 80.0, 140.0)),
        "rr": st.none() | st.sampled_from((8.0, 16.0, 30.0)),
        "spo2": st.none() | st.sampled_from((85.0, 93.0, 98.0)),
        "sbp": st.none() | st.sampled_from((80.0, 120.0)),
        "map": st.none() | st.sampled_from((55.0, 85.0)),
        "o2_device": st.sampled_from((None, "room_air", "hfnc")),
        "vasopressors": st.sampled_from((None, (), ("norepinephrine",))),
        "spo2_scale": st.sampled_from((1, 2)),
        "fever_masked": st.booleans(),
        "hypotension_sustained": st.sampled_from((None, False, True)),
        "hypoxaemia_sustained": st.sampled_from((None, False, True)),
    }
)


@settings(max_examples=300, deadline=None)
@given(_NEURO, _VITALS, _VITALS)
def test_the_icans_grade_reads_only_its_inputs(neuro, one, other):
    """BedState keeps the last ICANS grade while icans_inputs() stay the same (the vital
    signs change every minute, the neurological findings seldom): so the grade must not
    depend on anything else."""
    a, b = Snapshot(**neuro, **one), Snapshot(**neuro, **other)
    assert icans_inputs(a) == icans_inputs(b)
    assert icans_grade(a) == icans_grade(b)
