"""NEWS2 (Royal College of Physicians, 2017), as written in CLINICAL.md "NEWS2".

Every table is a list of upper cut points on a continuous value: a reading scores the band
whose upper cut it does not exceed (38.0 C scores 0, 38.05 C scores 1; 20 /min scores 0,
20.5 /min scores 2). A missing parameter is never scored as normal: the score is marked
incomplete and its band is only a lower bound (`band_at_least`), never "low".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.clinical.snapshot import Snapshot

Cuts = tuple[tuple[float, int], ...]
INF = math.inf

RR_CUTS: Cuts = ((8, 3), (11, 1), (20, 0), (24, 2), (INF, 3))
SPO2_SCALE1_CUTS: Cuts = ((91, 3), (93, 2), (95, 1), (INF, 0))
SPO2_SCALE2_CUTS: Cuts = ((83, 3), (85, 2), (87, 1), (92, 0))  # above 92: air or oxygen
SPO2_SCALE2_ON_O2_CUTS: Cuts = ((94, 1), (96, 2), (INF, 3))  # above 92, on oxygen
SPO2_SCALE2_ON_AIR_ABOVE = 0  # >= 93 on air scores 0
SBP_CUTS: Cuts = ((90, 3), (100, 2), (110, 1), (219, 0), (INF, 3))
HR_CUTS: Cuts = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (INF, 3))
TEMP_CUTS: Cuts = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (INF, 2))
OXYGEN_SCORE = 2  # any device other than room air, blow-by included
ACVPU_SCORE: dict[str, int] = {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}

PARAMETERS: tuple[str, ...] = ("rr", "spo2", "air_or_oxygen", "sbp", "hr", "consciousness", "temp")
LABELS: dict[str, str] = {
    "rr": "respiration rate",
    "spo2": "SpO2",
    "air_or_oxygen": "air or oxygen",
    "sbp": "systolic BP",
    "hr": "pulse",
    "consciousness": "consciousness",
    "temp": "temperature",
}
BANDS: tuple[str, ...] = ("low", "low-medium", "medium", "high")  # in order of severity


@dataclass(frozen=True, slots=True)
class News2:
    total: int
    band: str | None
    band_at_least: str | None
    single_parameter_3: bool
    complete: bool
    missing: tuple[str, ...]
    scores: dict[str, int]
    reasons: tuple[str, ...]


def cut_score(value: float, cuts: Cuts) -> int:
    """The score of the first band whose upper cut the value does not exceed."""
    for upper, score in cuts:
        if value <= upper:
            return score
    raise ValueError(f"{value} is above the last cut point")


def on_oxygen(s: Snapshot) -> bool | None:
    if s.o2_device is None:
        return True if s.oxygen_reported() else None  # no device recorded, a flow reported
    return s.o2_device != "room_air"


def spo2_score(s: Snapshot) -> int | None:
    """Scale 1, or scale 2 when a clinician set it; None when it cannot be scored."""
    if s.spo2 is None:
        return None
    if s.spo2_scale != 2:
        return cut_score(s.spo2, SPO2_SCALE1_CUTS)
    if s.spo2 <= SPO2_SCALE2_CUTS[-1][0]:
        return cut_score(s.spo2, SPO2_SCALE2_CUTS)
    oxygen = on_oxygen(s)
    if oxygen is None:
        return None  # 0 on air, 1-3 on oxygen: unknown
    return cut_score(s.spo2, SPO2_SCALE2_ON_O2_CUTS) if oxygen else SPO2_SCALE2_ON_AIR_ABOVE


def parameter_scores(s: Snapshot) -> dict[str, int | None]:
    """Each NEWS2 parameter's score, None when it is missing."""
    oxygen = on_oxygen(s)
    if s.acvpu is not None and s.acvpu not in ACVPU_SCORE:
        raise ValueError(f"unknown ACVPU level {s.acvpu!r}")
    return {
        "rr": None if s.rr is None else cut_score(s.rr, RR_CUTS),
        "spo2": spo2_score(s),
        "air_or_oxygen": None if oxygen is None else (OXYGEN_SCORE if oxygen else 0),
        "sbp": None if s.sbp is None else cut_score(s.sbp, SBP_CUTS),
        "hr": None if s.hr is None else cut_score(s.hr, HR_CUTS),
        "consciousness": None if s.acvpu is None else ACVPU_SCORE[s.acvpu],
        "temp": None if s.temp_c is None else cut_score(s.temp_c, TEMP_CUTS),
    }


def band_of(total: int, single_parameter_3: bool) -> str:
    """RCP bands: >= 7 high, 5-6 medium, < 5 with a single 3 low-medium, else low."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if single_parameter_3 else "low"


def news2(s: Snapshot) -> News2:
    """NEWS2 of a snapshot; incomplete when a parameter is missing (CLINICAL.md, "NEWS2")."""
    all_scores = parameter_scores(s)
    scores = {k: v for k, v in all_scores.items() if v is not None}
    missing = tuple(k for k in PARAMETERS if all_scores[k] is None)
    total = sum(scores.values())
    threes = tuple(k for k in PARAMETERS if scores.get(k) == 3)
    partial_band = band_of(total, bool(threes))
    complete = not missing
    if complete:
        band: str | None = partial_band
        at_least: str | None = partial_band
    else:
        band = "high" if partial_band == "high" else None  # missing parameters only add
        at_least = None if partial_band == "low" else partial_band  # never "low" if incomplete
    return News2(
        total=total,
        band=band,
        band_at_least=at_least,
        single_parameter_3=bool(threes),
        complete=complete,
        missing=missing,
        scores=scores,
        reasons=_reasons(total, band, at_least, missing, threes),
    )


def _reasons(
    total: int,
    band: str | None,
    at_least: str | None,
    missing: tuple[str, ...],
    threes: tuple[str, ...],
) -> tuple[str, ...]:
    reasons = []
    if not missing:
        reasons.append(f"NEWS2 {total} ({band})")
    else:
        names = ", ".join(LABELS[k] for k in missing)
        reasons.append(f"NEWS2 incomplete: {names} missing")
        bound = f", at least {at_least}" if at_least else ""
        reasons.append(f"NEWS2 partial total {total}{bound}")
    if threes:
        reasons.append("NEWS2 parameter scoring 3: " + ", ".join(LABELS[k] for k in threes))
    return tuple(reasons)
