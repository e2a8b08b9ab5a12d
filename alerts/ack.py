"""Stage 4: acknowledgement and snooze, as a Muter (the protocol of `inhibit.py`).

- Acknowledged: repeats and escalation are muted until the alert resolves, or worsens (a
  higher tier, or a higher grade in its tier), which clears the acknowledgement.
- Snoozed: muted until `snoozed_until`; then the engine re-arms it (re-notifies those told
  and restarts the escalation clock). A snooze never outlasts `max_snooze_s`.
Neither mutes a resolution: it reaches everyone told.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class AckMuter:
    def __init__(self, now: float, clock: Callable[[float], str]):
        self.now = now
        self.clock = clock  # epoch seconds -> "10:45"

    def mutes(self, alert: Any) -> str | None:
        state = getattr(alert, "state", None)  # a Condition has none: never acknowledged
        if state == "acknowledged":
            return f"acknowledged by {alert.acked_by}"
        if state == "snoozed" and alert.snoozed_until and self.now < alert.snoozed_until:
            return f"snoozed by {alert.snoozed_by} until {self.clock(alert.snoozed_until)}"
        return None
