"""The true CRS and ICANS grades of a simulated patient, for the --truth file.

ASTCT (CLINICAL.md) applied to the noise-free state, with hypotension and hypoxia graded by
the support the patient would need untreated, not by what staff have given yet: a patient
whose systolic falls below 80 without help is grade 3 even before the vasopressor is
started (the daemon, which sees only what is charted, may lag behind; that lag is what the
truth is there to measure).
"""

from __future__ import annotations

from .physiology import FEVER_C, Patient, State

MASKING_DRUGS = ("toci", "dex", "paracetamol")  # Treatment fields: antipyretic/anti-cytokine


def need_levels(s: State, p: Patient) -> tuple[int, int]:
    """(hypotension, hypoxia) level by the support needed untreated: 0, or ASTCT 2/3/4.
    Only the fall caused by CRS counts (a low-normal pressure at night is not CRS)."""
    bp = o2 = 0
    if p.course.bp_drop * s.leak >= 3:
        u = s.sbp_untreated
        bp = 4 if u < 65 else 3 if u < 80 else 2 if u < 90 else 0
    if p.course.spo2_drop * s.leak >= 1:
        # below the patient's own target range: scale 2 (COPD) patients live at 88-92 %
        r = s.spo2_room_air + (4 if p.spo2_scale == 2 else 0)
        o2 = 4 if r < 76 else 3 if r < 86 else 2 if r < 92 else 0
    return bp, o2


def crs_truth(s: State, p: Patient, masked: bool) -> int:
    """ASTCT on the noise-free state: CRS fever required (a transfusion reaction's or an
    infection's fever is not CRS), unless CRS fever was followed by an antipyretic or
    anti-cytokine drug (then hypotension and hypoxia set the grade)."""
    need = max(need_levels(s, p))
    if min(s.temp_c, s.temp_crs) >= FEVER_C:  # the temperature without other fevers
        return max(1, need)
    return need if masked else 0


def icans_truth(s: State) -> int:
    ice = s.ice
    by_ice = 0 if ice >= 10 else 1 if ice >= 7 else 2 if ice >= 3 else 3
    if ice == 0 and s.acvpu == "U":
        by_ice = 4
    by_level = {"V": 2, "P": 3, "U": 4}.get(s.acvpu, 0)
    return max(by_ice, by_level)
