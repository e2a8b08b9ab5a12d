"""Alert decisions scored against the simulator's truth: detection and burden (issue 18).

Input: the decisions `replay --decisions` writes (one dict each: ts, ward, bed, id, kind,
tier, level, event, notified, receivers, reason) and the truth (commands/evaluation/truth.py).
Output: `raw` figures (lists and counts, JSON-serialisable) that several runs can pool;
commands/evaluation/report.py turns them into the report and the table.

Detection, read honestly: an onset of true CRS grade >= 2 counts as detected only by a
tier >= 2 alert that names it (kind `crs` at grade >= 2, or a hypotension / hypoxaemia
alert), active no later than DETECT_S after the observation or care event that defines
the onset (the truth's `defined_ts`). An onset of grade >= 3 needs a `crs` alert at grade
>= 3 (or a shock / hypoxaemia alert at tier 3) in the same time. The delay is from the
defining event to the first moment such an alert is active (negative: it was already).

Burden: every tier >= 2 raise (a new alert, or one worsened to a tier >= 2) while the true
CRS grade was < 2 and the true ICANS grade 0 is a false urgent alert; every alert that
asked a person to act (notified to a receiver: the dashboard alone asks nobody) counts
once; notifications (raises, escalations, repeats) are counted separately.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from commands.evaluation.truth import BedTruth, Onset

DETECT_S = 300.0  # an onset's alert: no later than 5 min after its defining event
NAMING_KINDS = ("hypotension", "hypoxaemia", "hypoxia", "shock")
ACT_EVENTS = ("raised", "escalated", "repeated")  # notifications that ask someone to act
RISK_HORIZON_S = 12 * 3600.0  # a risk alert this long before the rule-based alert warns


def names(d: dict[str, Any], grade: int) -> bool:
    """Does this alert, as of this decision, name a CRS onset of `grade`?"""
    kind, tier = d["kind"], d["tier"]
    if kind == "crs":
        level = d.get("level")
        return (level if level is not None else tier) >= grade and tier >= 2
    if kind in NAMING_KINDS:
        return tier >= min(grade, 3)
    return False


def naming_intervals(decisions: list[dict], grade: int) -> list[tuple[float, float]]:
    """(from, to) spans in which an alert of the bed named an onset of `grade`."""
    open_at: dict[str, float] = {}
    spans = []
    for d in decisions:
        aid = d.get("id")
        if not aid:
            continue
        event = d["event"]
        if event == "resolved":
            active = False
        elif event == "suppressed":
            # a new alert muted is not shown; an alert shown stays shown when a repeat or an
            # escalation of it is not sent (acknowledged, or paused by inhibition)
            active = aid in open_at and names(d, grade)
        else:
            active = names(d, grade)
        if active and aid not in open_at:
            open_at[aid] = d["ts"]
        elif not active and aid in open_at:
            spans.append((open_at.pop(aid), d["ts"]))
    spans += [(t, float("inf")) for t in open_at.values()]
    return sorted(spans)


def detect(onset: Onset, spans: list[tuple[float, float]]) -> float | None:
    """Seconds from the defining event to the first naming alert active after the true
    onset (negative: before the evidence), or None when none came in time."""
    assert onset.defined_ts is not None
    start = min(onset.true_ts, onset.defined_ts)
    deadline = onset.defined_ts + DETECT_S
    first = None
    for a, b in spans:
        if b <= start or a > deadline:
            continue
        at = max(a, start)
        first = at if first is None else min(first, at)
    return None if first is None else first - onset.defined_ts


def risk_lead(onset: Onset, delay: float | None, risk_raises: list[float]) -> float | None:
    """Seconds from the first risk alert raised in the 12 h before the rule-based alert
    (the defining event when none came) to that alert; None without one."""
    assert onset.defined_ts is not None
    rule = onset.defined_ts + (delay if delay is not None else 0.0)
    first = next((t for t in risk_raises if rule - RISK_HORIZON_S <= t < rule), None)
    return None if first is None else rule - first


def score_bed(truth: BedTruth, decisions: list[dict]) -> dict[str, Any]:
    """The raw figures of one bed (decisions of that bed, in time order)."""
    spans = {g: naming_intervals(decisions, g) for g in (2, 3)}
    risk_raises = [
        d["ts"]
        for d in decisions
        if d["kind"] == "risk" and d["event"] == "raised" and d["tier"] >= 2
    ]
    onsets = []
    for o in truth.onsets:
        if o.defined_ts is None:
            onsets.append(
                {"bed": truth.bed, "grade": o.grade, "true_ts": o.true_ts, "observable": False}
            )
            continue
        delay = detect(o, spans[min(o.grade, 3)])
        onsets.append(
            {
                "bed": truth.bed,
                "grade": o.grade,
                "observable": True,
                "true_ts": o.true_ts,
                "defined_ts": o.defined_ts,
                "defined_by": o.defined_by,
                "masked": o.masked,
                "after_care": o.after_care,
                "detected": delay is not None,
                "delay_s": delay,
                "risk_alert_lead_s": risk_lead(o, delay, risk_raises),
            }
        )
    raises: Counter = Counter()
    false: Counter = Counter()
    false_confounded: Counter = Counter()
    notifications: Counter = Counter()
    act_alerts: Counter = Counter()
    acted: set[str] = set()
    last_tier: dict[str, int] = {}
    for d in decisions:
        aid, tier, kind, event = d.get("id"), d["tier"], d["kind"], d["event"]
        key = f"{kind}/{tier}"
        if event == "raised" and tier >= 2 and last_tier.get(aid or "", 0) < tier:
            raises[key] += 1
            crs, icans = truth.grade_at(d["ts"])
            if crs < 2 and icans == 0:
                false[key] += 1
                conf = truth.confounder_at(d["ts"])
                if conf:
                    false_confounded[f"{conf}:{key}"] += 1
        if aid:
            last_tier[aid] = tier if event not in ("resolved",) else 0
        if d.get("notified") and d.get("receivers") and event in ACT_EVENTS:
            notifications[f"{event}:{key}"] += 1
            if aid and aid not in acted:
                acted.add(aid)
                act_alerts[key] += 1
    return {
        "cohort": truth.cohort,
        "bed": truth.bed,
        "days": truth.days,
        "quiet_days": truth.quiet_days(),
        "onsets": onsets,
        "raises": dict(raises),
        "false_raises": dict(false),
        "false_by_confounder": dict(false_confounded),
        "notifications": dict(notifications),
        "act_alerts": dict(act_alerts),
    }


def score(truth: dict[tuple[str, str], BedTruth], decisions: list[dict]) -> list[dict[str, Any]]:
    """One raw record per bed of the truth (beds the recording never admitted included:
    their onsets count as missed)."""
    by_bed: dict[tuple[str, str], list[dict]] = {}
    for d in decisions:
        by_bed.setdefault((d["ward"], d["bed"]), []).append(d)
    return [
        score_bed(t, sorted(by_bed.get(key, []), key=lambda d: d["ts"])) for key, t in truth.items()
    ]
