"""The alert record the engine keeps, its public snapshot, its stored record, and Decision.

Times are epoch seconds (floats) everywhere here; the daemon formats them for the wire.

Record (`to_record()`, JSON-serialisable, one per alert; the daemon stores it on every
decision and hands the active ones to `AlertEngine.restore` after a restart):
    {"v": 1, "id", "ward", "bed", "kind", "patient_id", "tier", "level", "message", "detail",
     "state", "raised_ts", "updated_ts", "acked_by", "acked_ts", "snoozed_by",
     "snoozed_until", "told": [...], "escalation_level", "stage_ts", "notified_ts",
     "below_since", "below": null | {"kind", "tier", "reason", "detail"},
     "inhibited_by", "quiet_noted", "note", "resolved_ts", "resolved_by"}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .rules import Condition, level_label

RECORD_VERSION = 1
EVENTS = (
    "raised",
    "escalated",
    "repeated",
    "acknowledged",
    "snoozed",
    "downgraded",
    "returned",
    "resolved",
    "suppressed",
)
STATES = ("active", "acknowledged", "snoozed", "resolved")


@dataclass(slots=True)
class Alert:
    id: str
    ward: str
    bed: str
    kind: str
    patient_id: str | None
    tier: int
    level: int
    message: str  # the condition's human reason
    detail: dict[str, Any]
    raised_ts: float
    updated_ts: float
    state: str = "active"
    acked_by: str | None = None
    acked_ts: float | None = None
    snoozed_by: str | None = None
    snoozed_until: float | None = None
    told: list[str] = field(default_factory=list)  # receivers notified so far, in order
    escalation_level: int = 0
    stage_ts: float = 0.0  # when the current stage was told
    notified_ts: float = 0.0  # when those told were last notified (repeat clock)
    below_since: float | None = None  # hysteresis: condition absent or lower since
    below: Condition | None = None  # the lower condition waiting (None: absent)
    inhibited_by: str | None = None
    quiet_noted: bool = False  # a muted repeat/escalation was reported once already
    note: str | None = None  # the last inhibition reported, not to repeat it
    resolved_ts: float | None = None
    resolved_by: str | None = None
    tier_ts: float | None = None  # when it reached its current tier (its age counts from)
    peak_tier: int = 0  # the worst (tier, level) it was raised or worsened to: a return
    peak_level: int = 0  # to it after a downgrade is not news, nobody is paged again

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.ward, self.bed, self.kind)

    def snapshot(self, ts: float, reason: str) -> dict[str, Any]:
        """The public view: SPEC's alert fields plus state, acks, who was told and why."""
        return {
            "id": self.id,
            "tier": self.tier,
            "kind": self.kind,
            "ward": self.ward,
            "bed": self.bed,
            "patient_id": self.patient_id,
            "ts": ts,
            "message": self.message,
            "reason": reason,
            "state": self.state,
            "level": self.level,
            "detail": dict(self.detail),
            "raised_ts": self.raised_ts,
            "tier_ts": self.raised_ts if self.tier_ts is None else self.tier_ts,
            "acked_by": self.acked_by,
            "acked_ts": self.acked_ts,
            "snoozed_by": self.snoozed_by,
            "snoozed_until": self.snoozed_until,
            "told": list(self.told),
            "escalation_level": self.escalation_level,
            "inhibited_by": self.inhibited_by,
            "resolved_ts": self.resolved_ts,
            "resolved_by": self.resolved_by,
        }

    # -- transitions (the engine turns each into a Decision) ---------------------------------

    def worsen(self, cond: Condition, now: float, first_stage: tuple[str, ...]) -> str:
        """Re-alert at the worse condition: ack and snooze cleared, escalation restarted,
        the new tier's first stage added to those told. Returns the reason."""
        if cond.tier > self.tier:
            why = f"worsened from tier {self.tier} to tier {cond.tier}"
        else:
            why = (
                f"worsened within tier {self.tier} from "
                f"{level_label(self.kind, self.level)} to {level_label(self.kind, cond.level)}"
            )
        if self.state in ("acknowledged", "snoozed"):
            acked = self.state == "acknowledged"
            why += (
                f"; {'acknowledgement' if acked else 'snooze'} by "
                f"{self.acked_by if acked else self.snoozed_by} cleared, escalation restarted"
            )
        if cond.tier != self.tier:
            self.tier_ts = now
        self._take(cond)
        self.peak_tier, self.peak_level = max(
            (self.peak_tier, self.peak_level), (cond.tier, cond.level)
        )
        self.state, self.acked_by, self.acked_ts = "active", None, None
        self.snoozed_by = self.snoozed_until = None
        self.escalation_level, self.stage_ts, self.notified_ts = 0, now, now
        self.told = list(dict.fromkeys([*self.told, *first_stage]))
        return why

    def lower(self, cond: Condition, now: float) -> str:
        """Take the lower condition after its hold; ack kept, nobody paged."""
        old_tier, old_level = self.tier, self.level
        self._take(cond)
        self.updated_ts = now
        if self.tier != old_tier:
            self.escalation_level, self.stage_ts, self.notified_ts = 0, now, now
            self.tier_ts = now
            return f"improved from tier {old_tier} to tier {self.tier}"
        return (
            f"improved within tier {self.tier} from {level_label(self.kind, old_level)} "
            f"to {level_label(self.kind, self.level)}"
        )

    def returned(self, cond: Condition, now: float) -> str:
        """Back up to a tier and level it had reached already (after a downgrade): taken,
        the acknowledgement kept, nobody paged again; an unacknowledged alert's repeats
        and escalation restart from now. Returns the reason."""
        old = (self.tier, self.level)
        if cond.tier != self.tier:
            self.tier_ts = now
            self.escalation_level, self.stage_ts, self.notified_ts = 0, now, now
        self._take(cond)
        return (
            f"back from {level_label(self.kind, old[1])} to "
            f"{level_label(self.kind, cond.level)} (tier {cond.tier}), which this alert had "
            f"reached already: nobody paged again"
            + (f"; still acknowledged by {self.acked_by}" if self.state == "acknowledged" else "")
        )

    def rearm(self, now: float) -> str:
        """A snooze expired: active again, the escalation clock restarts now."""
        who = self.snoozed_by
        self.state, self.snoozed_by, self.snoozed_until, self.quiet_noted = (
            "active",
            None,
            None,
            False,
        )
        self.stage_ts = self.notified_ts = now
        return f"snooze by {who} expired: re-armed, told again"

    def _take(self, cond: Condition) -> None:
        self.tier, self.level, self.message = cond.tier, cond.level, cond.reason
        self.detail = dict(cond.detail)
        self.below_since = self.below = None
        self.quiet_noted, self.note = False, None

    # -- storage -----------------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"v": RECORD_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "below" and value is not None:
                value = {
                    "kind": value.kind,
                    "tier": value.tier,
                    "reason": value.reason,
                    "detail": dict(value.detail),
                }
            elif isinstance(value, list | dict):
                value = type(value)(value)
            rec[f.name] = value
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Alert:
        if rec.get("v") != RECORD_VERSION:
            raise ValueError(f"alert record version {rec.get('v')!r} is not {RECORD_VERSION}")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in rec.items() if k in names}
        if values.get("state") not in STATES:
            raise ValueError(
                f"alert record {rec.get('id')!r}: unknown state {values.get('state')!r}"
            )
        below = values.get("below")
        if below is not None:
            values["below"] = Condition(
                below["kind"],
                below["tier"],
                below["reason"],
                dict(below.get("detail") or {}),
                rec["ward"],
                rec["bed"],
            )
        values["told"] = list(values.get("told") or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Decision:
    """One notify-or-stay-quiet decision, always with a named, human reason.

    `notify`: send to `receivers` on `channels` (the dashboard alone when nobody is named).
    Every decision, notified or not, is for the audit chain and the dashboard.
    """

    alert: dict[str, Any]  # snapshot of the alert at the event
    event: str  # one of EVENTS
    notify: bool
    receivers: tuple[str, ...]
    channels: tuple[str, ...]
    reason: str
    actor: str = "system"  # the user, for acknowledge, snooze and manual resolve

    def payload(self) -> dict[str, Any]:
        """The `{p}/{ward}/alerts` message (SPEC.md), ts in epoch seconds."""
        a = self.alert
        return {
            "id": a["id"],
            "event": self.event,
            "tier": a["tier"],
            "kind": a["kind"],
            "ward": a["ward"],
            "bed": a["bed"],
            "patient_id": a["patient_id"],
            "ts": a["ts"],
            "message": a["message"],
            "reason": self.reason,
        }


def provisional(
    cond: Condition, patient_id: str | None, now: float, state: str, reason: str
) -> dict[str, Any]:
    """A snapshot for a condition that has no alert (muted, or latched after a manual
    resolve), so that its suppressed decision can still be shown and audited."""
    a = Alert(
        "",
        cond.ward,
        cond.bed,
        cond.kind,
        patient_id,
        cond.tier,
        cond.level,
        cond.reason,
        dict(cond.detail),
        now,
        now,
        state=state,
    )
    snap = a.snapshot(now, reason)
    snap["id"] = None
    return snap
