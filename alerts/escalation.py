"""Stage 6: escalation and repeats of one active alert, as of `now`.

- Escalation: when the current stage has gone `escalate_after_s` without an acknowledgement,
  the next stage of the tier's chain is told (one stage per call; the next waits a full
  interval again). The last stage does not escalate further.
- Repeat: every `repeat_interval_s` since those told were last notified, they are notified
  again (everyone told so far, except a stage told in this same call).
Tier 1 has no route: nothing is ever due. Whether a due step is sent or muted (acknowledged,
snoozed, inhibited) is the engine's choice; this module only says what is due and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .routing import Route, names


@dataclass(frozen=True, slots=True)
class Step:
    event: str  # "escalated" | "repeated"
    receivers: tuple[str, ...]
    stage: int  # the escalation level after the step
    reason: str
    what: str  # "escalation to charge_nurse", for a "skipped" reason


def due(alert: Any, route: Route | None, now: float) -> list[Step]:
    if route is None:
        return []
    steps = []
    level = alert.escalation_level
    if not route.last_stage(level) and now - alert.stage_ts >= route.escalate_after_s:
        level += 1
        nxt = route.stage(level)
        steps.append(
            Step(
                "escalated",
                nxt,
                level,
                f"not acknowledged within {route.escalate_after_s:.0f} s: "
                f"escalated to {names(nxt)}",
                f"escalation to {names(nxt)}",
            )
        )
    if now - alert.notified_ts >= route.repeat_interval_s:
        just = steps[0].receivers if steps else ()
        again = tuple(r for r in alert.told if r not in just)
        if again:
            steps.append(
                Step(
                    "repeated",
                    again,
                    level,
                    f"not acknowledged: repeated to {names(again)} "
                    f"(every {route.repeat_interval_s:.0f} s)",
                    f"repeat to {names(again)}",
                )
            )
    return steps
