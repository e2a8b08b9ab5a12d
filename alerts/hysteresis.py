"""Stage 3: hysteresis. Separate enter and exit conditions, and a minimum hold.

Enter: a tier >= 2 condition raises at once, except a NEWS2 urgent (NEWS2_URGENT_DELAY_S)
and a lost feed or offline device (NOTE_FIRST_S: a tier-1 note at once, urgent once it
lasted); a tier-1 advisory may wait `advisory_hold_s` (default 0). A worsening (higher tier,
or higher level in the tier) is delayed by the same delays (a note's from when it was raised).

Exit: an alert resolves only after its condition has been absent for `resolve_hold_s`; a
downgrade (lower tier or level) waits the same hold; a risk alert holds KIND_HOLD_S. One
timer, `since`, counts from when the condition was first seen below the alert, so an
oscillating signal keeps one alert.

Exit margins (NEWS2): an active NEWS2 alert holds while the total stays at or above
NEWS2_HOLD[tier]: medium (raised at >= 5) is still medium at 4 and is left only at 3 or
less; high (raised at >= 7) is left at 5 or less.

Unknown is not absent: while a kind's measure is undecided (`BedView.undecided`: a grade
None, NEWS2 incomplete) an alert of that kind neither resolves nor downgrades. A dead
thermometer must not resolve a CRS alert; staff can still resolve it by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

NEWS2_HOLD = {3: 6, 2: 4}  # an active NEWS2 alert of this tier holds while total >= this
# Kinds whose alert stands longer than resolve_hold_s once its condition is gone: a 12-hour
# forecast's warning is not withdrawn because p dipped for five minutes (no risk flapping).
KIND_HOLD_S = {"risk": 6 * 3600.0}


def hold_for(kind: str, resolve_hold_s: float) -> float:
    """How long an alert of `kind` waits, its condition absent or lower, before it changes."""
    return max(resolve_hold_s, KIND_HOLD_S.get(kind, 0.0))


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # "worsen" | "steady" | "wait" | "lower" | "resolve"
    since: float | None  # when the condition was first seen below the alert (None: it is not)
    reason: str


# A NEWS2 urgent (tier 2: low-medium or medium) must hold this long before it is raised or
# an alert worsens to it: NEWS2 is an observation-set score, and a band reached for a
# minute by persisted parameters moving together is not an urgent review (measured on the
# tuning seeds: most false NEWS2 pages lasted under 5 min). High (tier 3) is never delayed.
NEWS2_URGENT_DELAY_S = 300.0


# A lost feed or an offline device of a watched patient is a tier-1 note at once and urgent
# only once it has lasted this long (counted from the note): a bedside monitor's technical
# alarm delay. Most outages are a plug, a walk, a network blip of a few minutes; a monitor
# still dead after 10 min of a watched patient is a page (docs/clinical-decisions.md).
NOTE_FIRST_S = {"feed": 600.0, "device": 600.0}


def rise_delay(cond: Any) -> float:
    """How long a condition must hold before it raises (or worsens an alert to it)."""
    if cond.tier < 2:
        return 0.0
    if cond.kind == "news2":
        return NEWS2_URGENT_DELAY_S if cond.tier == 2 else 0.0
    return NOTE_FIRST_S.get(cond.kind, 0.0)


def note_first(cond: Any) -> bool:
    """Whether an urgent condition still in its rise delay shows as a tier-1 note meanwhile."""
    return cond.tier >= 2 and cond.kind in NOTE_FIRST_S


def enter(cond: Any, first_seen: float, now: float, advisory_hold_s: float) -> bool:
    """Whether a new condition raises now (first seen at `first_seen`)."""
    waited = now - first_seen
    if cond.tier >= 2:
        return waited >= rise_delay(cond)
    return waited >= advisory_hold_s


def within_margin(cond: Any, tier: int) -> bool:
    """A lower NEWS2 condition still inside the exit margin of an alert of `tier`."""
    if cond is None or cond.kind != "news2":
        return False
    return cond.detail.get("total", 0) >= NEWS2_HOLD.get(tier, math.inf)


def verdict(
    tier: int, level: int, cond: Any, undecided: bool, since: float | None, now: float, hold: float
) -> Verdict:
    """What becomes of an active alert at (tier, level) given its condition now (None: absent)."""
    current = (tier, level)
    if cond is not None and (cond.tier, cond.level) > current:
        return Verdict("worsen", None, "worsened")
    if cond is not None and (cond.tier, cond.level) == current:
        return Verdict("steady", None, "unchanged: already notified")
    if within_margin(cond, tier):
        return Verdict(
            "steady",
            None,
            f"unchanged: NEWS2 {cond.detail.get('total')} is within "
            f"the exit margin of tier {tier} (left at "
            f"{NEWS2_HOLD[tier] - 1} or less)",
        )
    if undecided:
        return Verdict("steady", None, "kept: the measure is not decided (unknown is not absent)")
    start = now if since is None else since
    waited = now - start
    if waited >= hold:
        if cond is None:
            return Verdict("resolve", start, f"resolved: condition absent for {waited:.0f} s")
        return Verdict("lower", start, f"lower for {waited:.0f} s")
    what = "absent" if cond is None else "lower"
    return Verdict(
        "wait",
        start,
        f"condition {what} since {waited:.0f} s ago; held {hold:.0f} s before it changes",
    )
