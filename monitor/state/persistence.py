"""Artefacts are not patients: what a vital's stream says once it has persisted.

docs/clinical-decisions.md ("Persistence and plausibility") gives the reasons and the
measured effect. In short:
- HR, RR and SpO2 (monitor streams, one sample every few seconds to five minutes): the
  scales read the *least extreme* reading of the last PERSIST_S, and at least of the newest
  two readings. A value counts only once every reading over that span agrees: a probe
  dropout, a motion burst or an impedance burst shorter than PERSIST_S moves nothing,
  whatever the cadence (at a 5-minute cadence it takes two readings in a row). This is
  the bedside monitor's own alarm delay, per parameter.
- SpO2 on scale 1, plausibility: two low readings in a row count at once (without waiting
  PERSIST_S) when the fall into them was gradual: at least three readings in PERSIST_S,
  none more than SPO2_GRADUAL_STEP points from the one before. A capillary leak
  desaturates a point at a time; a probe slipping falls 8-20 points from one sample to the
  next and comes back as suddenly. (Not on scale 2: a patient living at 88-92 % sits on
  the threshold, where noise alone gives two low readings.)
- A heart rate below HR_PLAUSIBLE while the pulse oximeter reads a pulse is a lead off,
  not asystole: it is left out.
- Blood pressure (a cuff every 15-60 min): one low reading is hypotension only when
  confirmed, by the next reading (the nurse's repeat) or by a fluid bolus charted for it
  (staff treated it: the care event defines the onset); an
  unconfirmed low reading is a note on the tile ("repeat the cuff"), and NEWS2 scores the
  less extreme of the newest two readings.
- Stale and lost windows of the monitor streams follow their own cadence: a 5-minute bed
  is not stale after 60 s. (Cuff, temperature and ACVPU keep their configured windows: a
  temperature from yesterday must not pass for today's.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from monitor.clinical.news2 import HR_CUTS, RR_CUTS, SBP_CUTS, cut_score
from monitor.clinical.thresholds import SPO2_GRADUAL_STEP, SPO2_LOW_SCALE2

MONITOR = ("hr", "rr", "spo2")  # the streams sampled by the bedside monitor
PERSIST_S = 180.0  # a monitor value counts once it held this long (and two readings)
HR_PLAUSIBLE = 20.0  # a heart rate below this while SpO2 reads a pulse: a lead off
STALE_CADENCES = 2.5  # a stream is stale after this many of its own intervals...
LOST_CADENCES = 5.0  # ... and lost after this many (never sooner than configured)

Reading = tuple[float, Any]  # (ts, value)
_VALUE = itemgetter(1)


@lru_cache(maxsize=4096)
def _hr(v: float) -> float:
    return cut_score(v, HR_CUTS) + abs(v - 70) / 1000


@lru_cache(maxsize=4096)
def _rr(v: float) -> float:
    return cut_score(v, RR_CUTS) + abs(v - 16) / 1000


@lru_cache(maxsize=4096)
def _sbp(v: float) -> float:
    return cut_score(v, SBP_CUTS) + abs(v - 130) / 1000


def _spo2_scale2(v: float) -> float:
    return abs(v - (SPO2_LOW_SCALE2 + 2))


def _higher_is_better(v: float) -> float:
    return -v


_EXTREMITY = {"hr": _hr, "rr": _rr, "sbp": _sbp}


def extremity(name: str, spo2_scale: int = 1) -> Callable[[float], float]:
    """How far from normal a reading of `name` is, for choosing the least extreme one:
    the NEWS2 score first, then the distance from the middle of the normal band. (The
    scores of readings seen are kept: a stream repeats its values, grading after grading.)"""
    if name == "spo2" and spo2_scale == 2:
        return _spo2_scale2
    return _EXTREMITY.get(name, _higher_is_better)  # SpO2 on scale 1: the higher the better


def _held(newest_first: Sequence[Reading]) -> int:
    """How many of the newest readings fall within PERSIST_S of the newest: a prefix, the
    readings being newest first (so `newest - ts` only grows along them)."""
    newest = newest_first[0][0]
    n = len(newest_first)
    while newest - newest_first[n - 1][0] > PERSIST_S:
        n -= 1
    return n


def persistent(newest_first: Sequence[Reading], score: Callable[[float], float]) -> tuple[Any, int]:
    """(the least extreme reading of the last PERSIST_S, at least of the newest two; how
    many readings that span held). `newest_first` must not be empty."""
    n = _held(newest_first)
    if n < 2:
        n = min(2, len(newest_first))
    # each distinct value scored once, newest first: among equals the newest stands
    return min(dict.fromkeys(map(_VALUE, newest_first[:n])), key=score), n


def spo2_persistent(
    newest_first: Sequence[Reading], low: float, spo2_scale: int = 1
) -> tuple[Any, int]:
    """SpO2 as the scales read it: `persistent`, or on scale 1 the less low of the newest
    two readings when both are below `low` and the fall into them was gradual (every step
    between the readings of the last PERSIST_S, at least three, within SPO2_GRADUAL_STEP)."""
    value, held = persistent(newest_first, extremity("spo2", spo2_scale))
    if spo2_scale == 2 or value < low or not newest_first[0][1] < low:
        return value, held  # (the newest reading not low: the newest two are not both)
    span = [r[1] for r in newest_first[: _held(newest_first)]]
    if len(span) < 3 or not (span[0] < low and span[1] < low):
        return value, held
    if any(abs(a - b) > SPO2_GRADUAL_STEP for a, b in zip(span, span[1:], strict=False)):
        return value, held  # a sudden fall: a probe, until it persisted
    return max(span[0], span[1]), 2


def cadence(newest_first: Sequence[Reading]) -> float | None:
    """The stream's usual interval: the median gap between its newest readings."""
    times = [r[0] for r in newest_first[:6]]
    gaps = sorted(a - b for a, b in zip(times, times[1:], strict=False) if a > b)
    return gaps[len(gaps) // 2] if gaps else None


def window(configured: tuple[float, float], newest_first: Sequence[Reading]) -> tuple[float, float]:
    """(stale_after_s, lost_after_s) for this stream: the configured window, widened to
    its own cadence (a 5-minute stream is stale after 12.5 min, lost after 25)."""
    stale, lost = configured
    every = cadence(newest_first)
    if every is None:
        return configured
    return max(stale, STALE_CADENCES * every), max(lost, LOST_CADENCES * every)
