"""CRS grade, ASTCT consensus (Lee et al. 2019), as written in CLINICAL.md "CRS grade".

Fever (>= 38.0 C) is required unless it is masked by treatment; then the more severe of the
circulation component (hypotension / vasopressors) and the oxygenation component (oxygen
device and flow) sets the grade: 1 with fever alone; when fever is masked, 0 once both have
resolved. Unknown inputs follow grade.py: the
grade is decided only when every possible value of the unknowns gives the same grade.
"""

from __future__ import annotations

from monitor.clinical.grade import Component, Grade, combine, decide, fmt, fmt_temp
from monitor.clinical.snapshot import Snapshot
from monitor.clinical.thresholds import (
    DEVICE_GRADE,
    DEVICE_NAME,
    FEVER_C,
    LOW_FLOW_MAX_LPM,
    MAP_LOW,
    ROOM_AIR_FIO2,
    SBP_LOW,
    SPO2_LOW,
    SPO2_LOW_SCALE2,
    VASOPRESSIN,
)

ANY_DEVICE_GRADE = frozenset((0, 2, 3, 4))  # what an unknown device could mean
NO_FEVER_COMPONENTS = "no fever: hypotension/hypoxia are not graded as CRS"


def crs_grade(s: Snapshot) -> Grade:
    """The ASTCT CRS grade of a snapshot, with reasons (CLINICAL.md, "CRS grade")."""
    oxygen = oxygenation(s)
    circulation = circulation_component(s)
    component_reasons = oxygen.reasons + circulation.reasons
    if s.temp_c is not None and s.temp_c >= FEVER_C:
        fever = Component.known(1, f"fever {fmt_temp(s.temp_c)} C")
    elif s.fever_masked:
        # Fever is no longer required, but no longer makes grade 1 either: once hypotension
        # and hypoxia have resolved, the treated patient's CRS has resolved (grade 0).
        masked = "fever masked by antipyretic or anti-cytokine therapy: fever not required"
        fever = (
            Component.between((0, 1), masked, "temperature unknown")
            if s.temp_c is None
            else Component.known(0, masked)
        )
    elif s.temp_c is None:
        return Grade(None, ("temperature unknown", *component_reasons), None)
    else:
        reasons = [f"no fever: temperature {fmt_temp(s.temp_c)} C"]
        if min(oxygen.possible) > 0 or min(circulation.possible) > 0:
            reasons.append(NO_FEVER_COMPONENTS)
        return Grade(0, tuple(reasons), 0)
    possible = combine((fever, oxygen, circulation))
    return decide(possible, fever.reasons + component_reasons)


# --- circulation: vasopressors, then blood pressure ---------------------------------------


def circulation_component(s: Snapshot) -> Component:
    """Hypotension component: 4 several pressors, 3 one, 2 hypotension without, 0 none."""
    if s.vasopressors is None:
        bp = blood_pressure(s)
        return Component(bp.possible | {3, 4}, ("vasopressors unknown", *bp.reasons))
    drugs = list(dict.fromkeys(d.strip().lower() for d in s.vasopressors if d.strip()))
    counted = [d for d in drugs if d != VASOPRESSIN]
    note = " (vasopressin not counted)" if VASOPRESSIN in drugs and counted else ""
    if len(counted) >= 2:
        return Component.known(4, f"{len(counted)} vasopressors: {', '.join(counted)}{note}")
    if counted:
        return Component.known(3, f"1 vasopressor: {counted[0]}{note}")
    if drugs:
        return Component.known(3, f"1 vasopressor: {VASOPRESSIN}")
    return blood_pressure(s)


def mean_pressure(s: Snapshot) -> tuple[float | None, bool]:
    """MAP as measured, else estimated from systolic and diastolic: (value, estimated)."""
    if s.map is not None:
        return s.map, False
    if s.sbp is not None and s.dbp is not None:
        return s.dbp + (s.sbp - s.dbp) / 3, True
    return None, False


def blood_pressure(s: Snapshot) -> Component:
    """Hypotension without vasopressors: 2, else 0; unknown when a pressure is missing."""
    mean, estimated = mean_pressure(s)
    low = []
    if s.sbp is not None and s.sbp < SBP_LOW:
        low.append(f"systolic {fmt(s.sbp)} mmHg")
    if mean is not None and mean < MAP_LOW:
        low.append(f"MAP {fmt(mean)} mmHg" + (" (estimated)" if estimated else ""))
    readings = ", ".join(low)
    if s.hypotension_sustained is True:
        return Component.known(2, "hypotension (sustained)" + (f": {readings}" if low else ""))
    if s.hypotension_sustained is False:
        return Component.known(0, *([f"hypotension not sustained: {readings}"] if low else []))
    if low:
        return Component.known(2, f"hypotension: {readings}")
    if s.sbp is None and mean is None:
        return Component.between((0, 2), "blood pressure unknown")
    if s.sbp is None:
        return Component.between((0, 2), "systolic pressure unknown")
    if mean is None:
        return Component.between((0, 2), "mean arterial pressure unknown")
    return Component.known(0)


# --- oxygenation: device, flow, SpO2 on room air -------------------------------------------


def spo2_low(s: Snapshot) -> float:
    """Below this SpO2 is hypoxaemia: 90 %, or the patient's own target on scale 2 (88 %)."""
    return SPO2_LOW_SCALE2 if s.spo2_scale == 2 else SPO2_LOW


def hypoxaemia(s: Snapshot) -> bool | None:
    """SpO2 below `spo2_low`: the daemon's sustained judgement when it has one, else face
    value."""
    if s.hypoxaemia_sustained is not None:
        return s.hypoxaemia_sustained
    return None if s.spo2 is None else s.spo2 < spo2_low(s)


def oxygenation(s: Snapshot) -> Component:
    """Hypoxia component from the oxygen device (CLINICAL.md: the device beats the flow)."""
    device = s.o2_device
    if device is None and s.oxygen_reported():  # a device reports oxygen; which device, no
        return Component(ANY_DEVICE_GRADE - {0}, (f"oxygen given{_reported(s)}, device unknown",))
    if device is None:
        if hypoxaemia(s):
            return Component(ANY_DEVICE_GRADE - {0}, ("oxygen device unknown", _low_spo2(s)))
        return Component(ANY_DEVICE_GRADE, ("oxygen device unknown",))
    if device not in DEVICE_GRADE:
        raise ValueError(f"unknown oxygen device {device!r}")
    if device == "room_air":
        return _room_air(s)
    if device == "nasal_cannula":
        return _nasal_cannula(s.o2_flow_lpm)
    flow = f" {fmt(s.o2_flow_lpm)} L/min" if s.o2_flow_lpm is not None else ""
    grade = DEVICE_GRADE[device]
    assert grade is not None  # only room air and nasal cannula are decided elsewhere
    return Component.known(grade, f"oxygen by {DEVICE_NAME[device]}{flow}")


def _reported(s: Snapshot) -> str:
    parts = [f"{fmt(s.o2_flow_lpm)} L/min"] if s.o2_flow_lpm else []
    if s.fio2 is not None and s.fio2 > ROOM_AIR_FIO2:
        parts.append(f"FiO2 {fmt(round(s.fio2 * 100, 1))} %")
    return " " + ", ".join(parts) if parts else ""


def _low_spo2(s: Snapshot) -> str:
    reading = f": SpO2 {fmt(s.spo2)} %" if s.spo2 is not None else ""
    sustained = " (sustained)" if s.hypoxaemia_sustained else ""
    return f"hypoxaemia{sustained}{reading}"


def _room_air(s: Snapshot) -> Component:
    low = hypoxaemia(s)
    if low is None:
        return Component.between((0, 2), "SpO2 unknown on room air")
    if low:
        reading = f": SpO2 {fmt(s.spo2)} %" if s.spo2 is not None else ""
        return Component.known(2, f"hypoxaemia on room air, oxygen not yet recorded{reading}")
    if s.spo2 is not None and s.spo2 < spo2_low(s):  # low at face value, not sustained
        return Component.known(0, f"SpO2 {fmt(s.spo2)} % on room air not sustained")
    return Component.known(0)


def _nasal_cannula(flow: float | None) -> Component:
    if flow is None:
        return Component.between(
            (2, 3), "oxygen by nasal cannula, flow unknown (low-flow 2 or high-flow 3)"
        )
    if flow <= LOW_FLOW_MAX_LPM:
        return Component.known(2, f"oxygen by nasal cannula {fmt(flow)} L/min")
    return Component.known(3, f"oxygen by nasal cannula {fmt(flow)} L/min (high-flow, > 6 L/min)")
