"""ICANS grade, ASTCT consensus (Lee et al. 2019), as written in CLINICAL.md "ICANS grade".

Five domains (ICE score, consciousness, seizure, motor, raised ICP / cerebral oedema); the
most severe sets the grade. Unknown ICE score and consciousness follow grade.py: the grade
is decided only when every possible value gives the same grade.

Decision (project, this module): seizure, motor weakness and cerebral oedema are findings
recorded when present; None counts as "not reported" (no finding), so that an ICE score of
10 in an alert patient is grade 0 without a list of negatives (CLINICAL.md: "ICE 10 and alert
is grade 0"; "with no ICE score and nothing else abnormal the grade is unknown").
"""

from __future__ import annotations

from monitor.clinical.grade import Component, Grade, combine, decide
from monitor.clinical.snapshot import Snapshot

# ICE score, upper bound (inclusive) -> grade: 0-2 -> 3, 3-6 -> 2, 7-9 -> 1, 10 -> 0.
ICE_CUTS: tuple[tuple[int, int], ...] = ((2, 3), (6, 2), (9, 1), (10, 0))
ICE_UNKNOWN = frozenset((0, 1, 2, 3))  # "0 and unarousable" (4) is the consciousness domain
# ACVPU -> consciousness domain; C (new confusion) shows in the ICE score, not here.
ACVPU_GRADE: dict[str, int] = {"A": 0, "C": 0, "V": 2, "P": 3, "U": 4}
ACVPU_TEXT: dict[str, str] = {
    "A": "alert (A)",
    "C": "new confusion (C)",
    "V": "wakes to voice (V)",
    "P": "wakes only to touch or pain (P)",
    "U": "unarousable (U)",
}
EDEMA_GRADE: dict[str, int] = {"focal": 3, "diffuse": 4}
SEIZURE_GRADE = 3  # decision: a seizure flag without duration is grade 3
PROLONGED_SEIZURE_GRADE = 4  # > 5 min or repetitive
MOTOR_GRADE = 4  # deep focal weakness (hemi- or paraparesis)


def icans_inputs(s: Snapshot) -> tuple:
    """Every field of the snapshot that icans_grade reads: equal inputs, equal grade (a
    caller grading a snapshot whose vital signs changed may keep the last ICANS grade)."""
    return (
        s.ice_score,
        s.acvpu,
        s.seizure,
        s.seizure_prolonged,
        s.motor_weakness,
        s.cerebral_edema,
    )


def icans_grade(s: Snapshot) -> Grade:
    """The ASTCT ICANS grade of a snapshot, with reasons (CLINICAL.md, "ICANS grade")."""
    domains = (ice(s), consciousness(s), seizure(s), motor(s), cerebral_edema(s))
    reasons = tuple(r for d in domains for r in d.reasons)
    return decide(combine(domains), reasons)


def ice_domain_grade(score: int) -> int:
    if not 0 <= score <= 10:
        raise ValueError(f"ICE score {score} is outside 0-10")
    return next(grade for upper, grade in ICE_CUTS if score <= upper)


def ice(s: Snapshot) -> Component:
    if s.ice_score is None:
        return Component(ICE_UNKNOWN, ("ICE score unknown",))
    return Component.known(ice_domain_grade(s.ice_score), f"ICE score {s.ice_score}/10")


def consciousness(s: Snapshot) -> Component:
    """ACVPU: A, C -> 0, V -> 2, P -> 3, U -> 4.

    Unknown ACVPU: an ICE score of 10 means the patient is awake (grade 0, as instructed);
    any other ICE score of 1 or more means the patient answered, so not unarousable, but
    waking to voice or touch is still possible; with ICE 0 or unknown anything is possible.
    """
    if s.acvpu is not None:
        if s.acvpu not in ACVPU_GRADE:
            raise ValueError(f"unknown ACVPU level {s.acvpu!r}")
        return Component.known(ACVPU_GRADE[s.acvpu], ACVPU_TEXT[s.acvpu])
    if s.ice_score == 10:
        return Component.known(0)
    if s.ice_score is not None and s.ice_score >= 1:
        return Component.between((0, 2, 3), "consciousness (ACVPU) unknown")
    return Component.between((0, 2, 3, 4), "consciousness (ACVPU) unknown")


def seizure(s: Snapshot) -> Component:
    if s.seizure_prolonged:
        return Component.known(PROLONGED_SEIZURE_GRADE, "prolonged (> 5 min) or repetitive seizure")
    if s.seizure:
        return Component.known(SEIZURE_GRADE, "seizure")
    return Component.known(0)


def motor(s: Snapshot) -> Component:
    if s.motor_weakness:
        return Component.known(MOTOR_GRADE, "deep focal motor weakness")
    return Component.known(0)


def cerebral_edema(s: Snapshot) -> Component:
    if s.cerebral_edema is None:
        return Component.known(0)
    if s.cerebral_edema not in EDEMA_GRADE:
        raise ValueError(f"unknown cerebral oedema {s.cerebral_edema!r}")
    return Component.known(EDEMA_GRADE[s.cerebral_edema], f"{s.cerebral_edema} cerebral oedema")
