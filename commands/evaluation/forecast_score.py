"""The forecast (each bed's published risk) scored against the simulator's truth.

- Discrimination: every hour of every patient whose true CRS grade is below 2, the risk
  last published (within STALE_S) against "a true onset of grade >= 2 within the next
  12 h"; hours whose 12 h run past the end of the recording are left out (no label yet).
- Lead over the rule-based alert: for each grade >= 2 onset, the time from the first risk
  >= a threshold in the 12 h before the rule-based CRS grade >= 2 alert (or, when that alert
  never came, the defining event) to that alert, for every threshold of THRESHOLDS; the
  report picks the highest threshold that warns >= 80 % of onsets.
- Risk alerts per true case: the `risk` alerts raised, over the onsets.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from commands.evaluation.truth import BedTruth

HORIZON_S = 12 * 3600.0
STEP_S = 3600.0
STALE_S = 2 * 3600.0  # an older risk is no forecast for that hour
# 0.01-0.04 too: a cohort calibrated to a low base rate (autoimmune) has its warnings there
THRESHOLDS = (0.01, 0.02, 0.03, 0.04, *(round(0.05 * i, 2) for i in range(1, 20)))


def risk_at(series: list[tuple[float, float]], times: list[float], ts: float) -> float | None:
    i = bisect_right(times, ts) - 1
    if i < 0 or ts - series[i][0] > STALE_S:
        return None
    return series[i][1]


def score_bed(
    truth: BedTruth, series: list[tuple[float, float]], onsets: list[dict[str, Any]]
) -> dict[str, Any]:
    """`series`: (ts, p) as published, in time order; `onsets`: this bed's scored onsets
    (commands/evaluation/scoring.py), for the rule-based alert times."""
    times = [t for t, _ in series]
    starts = [o.true_ts for o in truth.onsets if o.grade == 2]
    samples = []
    h = truth.start + STEP_S
    while h + HORIZON_S <= truth.end:
        crs, _ = truth.grade_at(h)
        if crs < 2:
            p = risk_at(series, times, h)
            if p is not None:
                y = int(any(h < s <= h + HORIZON_S for s in starts))
                samples.append((round(p, 4), y))
        h += STEP_S
    leads = []
    for o in onsets:
        if o["grade"] != 2 or not o.get("observable", True):
            continue
        rule = o["defined_ts"] + o["delay_s"] if o["detected"] else o["defined_ts"]
        lead = {}
        window = [(t, p) for t, p in series if rule - HORIZON_S <= t < rule]
        for thr in THRESHOLDS:
            first = next((t for t, p in window if p >= thr), None)
            lead[str(thr)] = None if first is None else rule - first
        leads.append(lead)
    return {"cohort": truth.cohort, "samples": samples, "leads": leads}


def auprc(ps: list[float], ys: list[int]) -> float | None:
    """Average precision (the area under the precision-recall curve, step-wise)."""
    pos = sum(ys)
    if not pos:
        return None
    pairs = sorted(zip(ps, ys, strict=True), key=lambda x: -x[0])
    tp = fp = 0
    ap, i = 0.0, 0
    while i < len(pairs):
        j, dtp = i, 0
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            dtp += pairs[j][1]
            j += 1
        tp += dtp
        fp += (j - i) - dtp
        ap += (dtp / pos) * (tp / (tp + fp))
        i = j
    return ap
