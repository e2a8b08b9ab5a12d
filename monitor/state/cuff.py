"""Blood pressure from a cuff: when one low reading is hypotension (persistence.py has the
rule and docs/clinical-decisions.md the reasons).

Functions over a bed's streams (`vitals`: name -> a time-sorted series with `at(t)` and
`newest(t, n)`; `meds`: drug -> a series of doses), as of t; no state of their own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from monitor.clinical.thresholds import FLUID_BOLUS_MARK

CUFF = ("sbp", "map")  # a reading is low if either is below its bound
_TS = itemgetter(0)


def times(vitals: Mapping[str, Any], t: float, n: int) -> list[float]:
    """The times of the newest n cuff readings at or before t, newest first."""
    found = {ts for name in CUFF if name in vitals for ts, _ in vitals[name].newest(t, n)}
    return sorted(found, reverse=True)[:n]


def low_at(vitals: Mapping[str, Any], low: Mapping[str, float], ts: float) -> bool | None:
    """Whether the cuff reading at ts was low (systolic or mean), None if there was none."""
    found = None
    for name in CUFF:
        series = vitals.get(name)
        item = series.at(ts) if series else None
        if item is not None and item[0] == ts:
            found = bool(found) or item[1] < low[name]
    return found


def bolus_between(meds: Mapping[str, Any], start: float, end: float) -> bool:
    """A fluid bolus charted in [start, end]: staff treated the low reading."""
    for drug, series in meds.items():
        if FLUID_BOLUS_MARK in drug:
            i = bisect_left(series.items, start, key=_TS)
            if i < len(series.items) and series.items[i][0] <= end:
                return True
    return False


def hypotension(
    vitals: Mapping[str, Any],
    low: Mapping[str, float],
    meds: Mapping[str, Any],
    t: float,
) -> bool | None:
    """The newest cuff reading is low and confirmed: by the reading before it (the nurse's
    repeat) or by a fluid bolus given for it. None: no cuff reading. (A tachycardia does
    not confirm: it did not tell a real fall from a cuff artefact in a febrile patient.)"""
    newest = times(vitals, t, 2)
    if not newest:
        return None
    if not low_at(vitals, low, newest[0]):
        return False
    if len(newest) > 1 and low_at(vitals, low, newest[1]):
        return True
    return bolus_between(meds, newest[0], t)
