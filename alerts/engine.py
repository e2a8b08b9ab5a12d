"""The alert engine: the stages of this package, chained, over the active alerts.

Pure: no I/O, no clock. Every call takes `now` (epoch seconds) and returns Decisions for
the daemon to deliver, store (`alert.to_record()` via `records()`) and audit. Active alerts
are keyed by (ward, bed, kind): one alert per kind per bed, its id stable for its life.

evaluate(view) per bed: rules -> collapse (same kind) -> inhibit (cross kind, against what
fires) -> hysteresis (enter, worsen, hold, margin) -> raise / re-alert / downgrade / resolve.
tick(now): snooze expiry, hold-based resolutions, pending advisories, escalation, repeats.
A decision is emitted when something happens or is muted, never per evaluate of an
unchanged alert (dedup); `active()` gives each alert's current status reason instead.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from . import escalation, hysteresis, inhibit, rules
from .ack import AckMuter
from .alert import Alert, Decision, provisional
from .config import AlertSettings
from .routing import channels, first_stage, merge, names, route_for
from .rules import SYSTEM, Condition
from .view import BedView

Key = tuple[str, str, str]
V = TypeVar("V")
_NONE = Condition("", 0, "")  # tier 0, for ordering
TIER3_RESOLVERS = frozenset({"physician"})  # who may resolve a tier-3 alert by hand
TIER3_MIN_REASON = 10  # characters of the reason they must give


class UnknownAlert(KeyError):
    """No active alert has this id (never raised, or already resolved)."""


class ByBed(dict[Key, V]):
    """A dict keyed by (ward, bed, kind) that also knows the kinds held for each bed."""

    def __init__(self) -> None:
        super().__init__()
        self._beds: dict[tuple[str, str], set[str]] = {}

    def kinds(self, ward: str, bed: str) -> set[str]:
        return set(self._beds.get((ward, bed), ()))

    def __setitem__(self, key: Key, value: V) -> None:
        super().__setitem__(key, value)
        self._beds.setdefault(key[:2], set()).add(key[2])

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        kinds = self._beds.get(key[:2])
        if kinds is not None:
            kinds.discard(key[2])
            if not kinds:
                del self._beds[key[:2]]

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def setdefault(self, key, default=None):  # keep the index right
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v


class AlertEngine:
    def __init__(self, settings: AlertSettings, ids: Callable[[], str] | None = None):
        self.settings = settings
        self._ids = ids or (lambda: uuid.uuid4().hex)
        # Tables keyed by (ward, bed, kind), indexed by bed: a ward of thousands of beds
        # evaluates one bed against its own alerts (and the daemon's), never all of them.
        self._alerts: ByBed[Alert] = ByBed()
        self._pending: ByBed[tuple[float, Condition, str | None]] = ByBed()  # tier-1 waiting
        self._muted: ByBed[str] = ByBed()  # conditions muted before raising: reason reported
        self._latched: ByBed[list[Any]] = ByBed()  # manual resolve: [tier, level, user, noted]
        self._rising: ByBed[tuple[float, Condition]] = ByBed()  # a delayed worsening waiting
        self._patients: dict[tuple[str, str], str | None] = {}  # (ward, bed) -> patient_id

    # -- state -----------------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        settings: AlertSettings,
        records: Iterable[dict[str, Any]],
        ids: Callable[[], str] | None = None,
    ) -> AlertEngine:
        """An engine holding the unresolved alerts of stored records (the newest per key):
        acks, snoozes, who was told and escalation clocks survive a restart."""
        engine = cls(settings, ids)
        for rec in records:
            a = Alert.from_record(rec)
            old = engine._alerts.get(a.key)
            if a.state != "resolved" and (old is None or a.raised_ts >= old.raised_ts):
                engine._alerts[a.key] = a
                engine._patients[(a.ward, a.bed)] = a.patient_id
        return engine

    def records(self) -> list[dict[str, Any]]:
        return [a.to_record() for a in self._sorted()]

    def record_of(self, snapshot: dict[str, Any]) -> dict[str, Any] | None:
        """The engine record of the unresolved alert a decision's snapshot shows (to store
        it), None once resolved."""
        a = self._alerts.get((snapshot["ward"], snapshot["bed"], snapshot["kind"]))
        return a.to_record() if a is not None and a.id == snapshot["id"] else None

    def _context(self, ward: str, bed: str) -> list[Alert]:
        """The alerts that may mute one of this bed's: its own, and the daemon's (whose
        rules reach every bed). Inhibition rules never cross from one bed to another."""
        out = [self._alerts[(ward, bed, k)] for k in self._alerts.kinds(ward, bed)]
        if (ward, bed) != (SYSTEM, SYSTEM):
            out += [self._alerts[(SYSTEM, SYSTEM, k)] for k in self._alerts.kinds(SYSTEM, SYSTEM)]
        return out

    def active(self) -> list[dict[str, Any]]:
        """Snapshots of the unresolved alerts, each with why it is quiet or loud now."""
        return [a.snapshot(a.updated_ts, self._status(a)) for a in self._sorted()]

    def _status(self, a: Alert) -> str:
        why = a.inhibited_by or AckMuter(a.updated_ts, self.settings.clock).mutes(a)
        if a.below_since is not None:
            what = "absent" if a.below is None else "lower"
            hold = hysteresis.hold_for(a.kind, self.settings.resolve_hold_s)
            at = self.settings.clock(a.below_since + hold)
            why = (f"{why}; " if why else "") + (
                f"condition {what} since "
                f"{self.settings.clock(a.below_since)}, "
                f"changes at {at} unless it returns"
            )
        return why or "unchanged: already notified"

    def _sorted(self) -> list[Alert]:
        """Most severe first, then oldest, then by place and kind: an order that does not
        depend on the alerts' random ids (replay's decisions come out the same each run)."""
        return sorted(
            self._alerts.values(), key=lambda a: (-a.tier, a.raised_ts, a.ward, a.bed, a.kind, a.id)
        )

    def _find(self, alert_id: str) -> Alert:
        for a in self._alerts.values():
            if a.id == alert_id:
                return a
        raise UnknownAlert(f"no active alert {alert_id!r} (unknown or already resolved)")

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, view: BedView, now: float) -> list[Decision]:
        """One bed's view -> decisions."""
        ward, bed, pid = view.ward, view.bed, view.patient_id
        out = []
        if self._patients.get((ward, bed), pid) != pid:
            out = self._clear(ward, bed, now, f"resolved: bed {bed} now holds another patient")
        self._patients[(ward, bed)] = pid
        holding = frozenset(self._alerts.kinds(ward, bed))
        conds = rules.conditions(view, self.settings, holding)
        return out + self._bed(ward, bed, pid, conds, view.undecided(), now)

    def evaluate_system(
        self,
        broker_connected: bool,
        store_ok: bool,
        store_error: str,
        now: float,
        faults: Sequence[tuple[str, str]] = (),
        behind_s: float = 0.0,
        behind_limit_s: float = 300.0,
    ) -> list[Decision]:
        """The daemon's own health, as alerts of the pseudo-bed (SYSTEM, SYSTEM)."""
        conds = rules.system_conditions(
            broker_connected,
            store_ok,
            store_error,
            faults,
            behind_s=behind_s,
            behind_limit_s=behind_limit_s,
        )
        out = self._bed(SYSTEM, SYSTEM, None, conds, frozenset(), now)
        if any(d.event == "raised" and d.alert["kind"] == "lag" for d in out):
            out += self._withdraw_feeds(now - behind_s, now)
        return out

    def _withdraw_feeds(self, since: float, now: float) -> list[Decision]:
        """The daemon is behind its input: a bed's feed alert raised after its newest input
        (`since`) was the daemon's lag, not the bed's feed. Withdrawn (resolved); the lag
        alert mutes any feed alert until the daemon catches up, and a feed still dead
        then is raised again."""
        why = "withdrawn: raised while the daemon was behind its input, not this bed's feed"
        stale = [a for a in self._alerts.values() if a.kind == "feed" and a.raised_ts >= since]
        return [self._resolve(a, now, why) for a in stale]

    def _bed(
        self,
        ward: str,
        bed: str,
        pid: str | None,
        conds: list[Condition],
        undecided: frozenset[str],
        now: float,
    ) -> list[Decision]:
        kept, _ = inhibit.collapse(conds)  # same kind: the higher tier stands
        by_kind = {c.kind: c for c in kept}
        kinds = set(by_kind)
        for table in (self._alerts, self._pending, self._muted, self._latched, self._rising):
            kinds |= table.kinds(ward, bed)
        out: list[Decision] = []

        def order(kind: str) -> tuple[int, str]:  # the most severe first, then by name
            held = self._alerts.get((ward, bed, kind))
            return (-max(x.tier for x in (by_kind.get(kind), held, _NONE) if x), kind)

        for kind in sorted(kinds, key=order):
            key, cond = (ward, bed, kind), by_kind.get(kind)
            # what fires now: this bed's conditions and every alert still active (an alert
            # resolved earlier in this loop no longer mutes); never the target's own kind
            ctx = [x for x in (*kept, *self._context(ward, bed)) if (x.ward, x.bed, x.kind) != key]
            alert = self._alerts.get(key)
            if alert is None:
                out += self._new(key, pid, cond, ctx, now)
            else:
                out += self._update(alert, cond, kind in undecided, ctx, now)
        return out

    def _new(
        self, key: Key, pid: str | None, cond: Condition | None, ctx: list[Any], now: float
    ) -> list[Decision]:
        if cond is None:  # gone: forget any wait, mute or latch
            for table in (self._pending, self._muted, self._latched):
                table.pop(key, None)
            return []
        latch = self._latched.get(key)
        if latch and (cond.tier, cond.level) <= (latch[0], latch[1]):
            if latch[3]:
                return []
            latch[3] = True
            why = (
                f"not re-raised: resolved by {latch[2]} while the condition held; "
                "re-arms when it clears or worsens"
            )
            return [self._quiet(provisional(cond, pid, now, "resolved", why), why)]
        self._latched.pop(key, None)
        muted = inhibit.mutes(cond, ctx)
        if muted:
            if self._muted.get(key) == f"{cond.tier}:{muted}":
                return []
            self._muted[key] = f"{cond.tier}:{muted}"
            why = f"tier {cond.tier} {cond.kind} alert not raised: {muted}"
            return [self._quiet(provisional(cond, pid, now, "inhibited", why), why)]
        self._muted.pop(key, None)
        first = self._pending.get(key, (now,))[0]
        if hysteresis.note_first(cond) and not hysteresis.enter(cond, first, now, 0.0):
            # a note at once; tick() makes it urgent once it lasted (hysteresis.NOTE_FIRST_S)
            self._rising[key] = (now, cond)
            after = hysteresis.rise_delay(cond) / 60
            cond = Condition(
                cond.kind,
                1,
                f"{cond.reason} (urgent if it lasts {after:.0f} min)",
                dict(cond.detail),
                cond.ward,
                cond.bed,
            )
        elif not hysteresis.enter(cond, first, now, self.settings.advisory_hold_s):
            self._pending[key] = (first, cond, pid)
            return []
        self._pending.pop(key, None)
        told = first_stage(self.settings, cond.tier)
        a = Alert(
            self._ids(),
            cond.ward,
            cond.bed,
            cond.kind,
            pid,
            cond.tier,
            cond.level,
            cond.reason,
            dict(cond.detail),
            now,
            now,
            told=list(told),
            stage_ts=now,
            notified_ts=now,
            tier_ts=now,
            peak_tier=cond.tier,
            peak_level=cond.level,
        )
        self._alerts[key] = a
        return [self._say(a, "raised", now, told, f"new tier {a.tier} alert")]

    def _update(
        self, a: Alert, cond: Condition | None, undecided: bool, ctx: list[Any], now: float
    ) -> list[Decision]:
        out: list[Decision] = []
        probe = cond if cond is not None and cond.tier >= a.tier else a
        muted = inhibit.mutes(probe, ctx)
        if muted != a.inhibited_by:
            # the pause is reported below, once; skipped repeats are not reported again
            a.inhibited_by, a.note, a.quiet_noted = muted, None, muted is not None
            if muted is None:  # re-armed: the escalation clock restarts from now
                a.stage_ts = a.notified_ts = now
        v = hysteresis.verdict(
            a.tier,
            a.level,
            cond,
            undecided,
            a.below_since,
            now,
            hysteresis.hold_for(a.kind, self.settings.resolve_hold_s),
        )
        if v.action == "worsen" and not muted:
            assert cond is not None  # a worsening has its condition
            # a note that becomes urgent counts from when it was raised (the feed died then)
            start = a.raised_ts if hysteresis.note_first(cond) and a.tier < 2 else now
            first = self._rising.get(a.key, (start, cond))[0]
            if now - first < hysteresis.rise_delay(cond):
                self._rising[a.key] = (first, cond)  # not yet: tick() looks again
                return out
            self._rising.pop(a.key, None)
            return [self._worsen(a, cond, now)]
        self._rising.pop(a.key, None)
        if muted:
            why = (
                f"worsening to tier {cond.tier} not sent: {muted}"
                if v.action == "worsen" and cond is not None
                else f"{muted}: repeats and escalation paused"
            )
            if why != a.note:
                a.note = why
                out.append(self._quiet(a.snapshot(now, why), why))
        if v.action in ("steady", "worsen"):
            a.below_since = a.below = None
            if cond is not None and v.action == "steady":
                # fresher readings: the alert says what the tile shows (a NEWS2 held inside
                # its exit margin says today's total, not the one it was raised at)
                a.message = cond.reason
                if (cond.tier, cond.level) == (a.tier, a.level):
                    a.detail = dict(cond.detail)
        elif v.action == "wait":
            a.below_since, a.below = v.since, cond
        elif v.action == "lower":
            assert cond is not None  # a lowering has its condition
            out.append(self._lower(a, cond, now))
        else:
            out.append(self._resolve(a, now, v.reason))
        return out

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Decision]:
        """What time alone changes: pending advisories, snooze expiry, hold-based lowering
        and resolution, escalation and repeats."""
        out: list[Decision] = []
        for key, (_, cond, pid) in sorted(self._pending.items()):
            ctx = [x for x in self._context(key[0], key[1]) if x.key != key]
            out += self._new(key, pid, cond, ctx, now)
        for key, (first, cond) in sorted(self._rising.items(), key=lambda x: x[0]):
            held = self._alerts.get(key)
            if held is None:
                self._rising.pop(key, None)
            elif now - first >= hysteresis.rise_delay(cond):
                ctx = [x for x in self._context(key[0], key[1]) if x.key != key]
                out += self._update(held, cond, False, ctx, now)
        for a in self._sorted():
            if a.state == "snoozed" and now >= (a.snoozed_until or 0):
                out.append(self._rearm(a, now))
            hold = hysteresis.hold_for(a.kind, self.settings.resolve_hold_s)
            if a.below_since is not None and now - a.below_since >= hold:
                if a.below is None:
                    out.append(
                        self._resolve(
                            a, now, f"resolved: condition absent for {now - a.below_since:.0f} s"
                        )
                    )
                    continue
                out.append(self._lower(a, a.below, now))
            out += self._escalate(a, now)
        return out

    def next_due(self) -> float:
        """The earliest time at which `tick` will change something by a hold ending, a
        snooze expiring or a rising condition's delay passing (math.inf: none known):
        the clock's pass can come then, not at its next whole second (escalations and
        repeats, minutes apart, keep the pass's one-second grain)."""
        due = math.inf
        for a in self._alerts.values():
            if a.state == "snoozed" and a.snoozed_until is not None:
                due = min(due, a.snoozed_until)
            if a.below_since is not None:
                due = min(
                    due, a.below_since + hysteresis.hold_for(a.kind, self.settings.resolve_hold_s)
                )
        for first, cond in self._rising.values():
            due = min(due, first + hysteresis.rise_delay(cond))
        return due

    def _escalate(self, a: Alert, now: float) -> list[Decision]:
        steps = escalation.due(a, route_for(self.settings, a.tier), now)
        if not steps:
            return []
        muted = a.inhibited_by or AckMuter(now, self.settings.clock).mutes(a)
        if muted:
            if a.quiet_noted:
                return []
            a.quiet_noted = True
            why = f"{steps[0].what} skipped: {muted}"
            return [self._quiet(a.snapshot(now, why), why)]
        out = []
        for s in steps:
            if s.event == "escalated":
                a.escalation_level, a.stage_ts = s.stage, now
                a.told = list(merge(a.told, s.receivers))
            else:
                a.notified_ts = now
            out.append(self._say(a, s.event, now, s.receivers, s.reason))
        return out

    # -- user actions ----------------------------------------------------------------------

    def ack(self, alert_id: str, user: str, now: float) -> list[Decision]:
        a = self._find(alert_id)
        if a.state == "acknowledged":
            assert a.acked_ts is not None  # set with the state
            why = f"already acknowledged by {a.acked_by} at {self.settings.clock(a.acked_ts)}"
            return [self._quiet(a.snapshot(now, why), why, "acknowledged", user)]
        a.state, a.acked_by, a.acked_ts = "acknowledged", user, now
        a.snoozed_by = a.snoozed_until = None
        a.quiet_noted = False
        return [
            self._say(
                a,
                "acknowledged",
                now,
                tuple(a.told),
                f"acknowledged by {user}: escalation stopped",
                user,
            )
        ]

    def snooze(self, alert_id: str, user: str, now: float, seconds: float) -> list[Decision]:
        if not seconds > 0:
            raise ValueError(f"snooze for {seconds} s: must be more than 0")
        a = self._find(alert_id)
        if a.state == "acknowledged":
            raise ValueError(
                f"alert {alert_id} is acknowledged by {a.acked_by}: "
                "it is muted until it resolves or worsens"
            )
        limit = self.settings.max_snooze_s
        a.state, a.snoozed_by, a.snoozed_until = "snoozed", user, now + min(seconds, limit)
        a.quiet_noted = False
        why = f"snoozed by {user} until {self.settings.clock(a.snoozed_until)}"
        if seconds > limit:
            why += f" (limited to {limit:.0f} s)"
        a.updated_ts = now
        return [self._quiet(a.snapshot(now, why), why, "snoozed", user)]

    def resolve(
        self, alert_id: str, user: str, now: float, note: str = "", role: str | None = None
    ) -> list[Decision]:
        """Resolve by hand. If the condition still holds, it is not re-raised until it
        clears or worsens (a sensor removed on purpose must not page again in 5 s).
        A tier-3 alert is resolved by its condition ending, or by a physician with a
        reason (`role` given by the caller; None: not a person's account, e.g. replay):
        a nurse acknowledges it. Raises PermissionError otherwise."""
        a = self._find(alert_id)
        if a.tier >= 3 and role is not None:
            if role not in TIER3_RESOLVERS:
                raise PermissionError(
                    "a tier-3 alert is resolved by its condition ending or by a physician; "
                    "acknowledge it instead"
                )
            if len(note.strip()) < TIER3_MIN_REASON:
                raise PermissionError(
                    f"resolving a tier-3 alert needs a reason of at least {TIER3_MIN_REASON} "
                    "characters"
                )
        self._latched[a.key] = [a.tier, a.level, user, False]
        why = f"resolved by {user}" + (f": {note}" if note else "")
        return [self._resolve(a, now, why, user)]

    def discharge(self, ward: str, bed: str, now: float) -> list[Decision]:
        """The patient left the bed: every alert of the bed resolves, waits are dropped."""
        self._patients.pop((ward, bed), None)
        return self._clear(ward, bed, now, "resolved: patient discharged")

    def _clear(self, ward: str, bed: str, now: float, why: str) -> list[Decision]:
        for table in (self._pending, self._muted, self._latched, self._rising):
            for key in [k for k in table if k[:2] == (ward, bed)]:
                del table[key]
        return [
            self._resolve(a, now, why) for a in self._sorted() if (a.ward, a.bed) == (ward, bed)
        ]

    # -- transitions -----------------------------------------------------------------------

    def _worsen(self, a: Alert, cond: Condition, now: float) -> Decision:
        if (cond.tier, cond.level) <= (a.peak_tier, a.peak_level):
            why = a.returned(cond, now)
            return self._quiet(a.snapshot(now, why), why, "returned")
        why = a.worsen(cond, now, first_stage(self.settings, cond.tier))
        return self._say(a, "raised", now, a.told, why)

    def _lower(self, a: Alert, cond: Condition, now: float) -> Decision:
        why = a.lower(cond, now) + (
            f" for {hysteresis.hold_for(a.kind, self.settings.resolve_hold_s):.0f} s: "
            "downgraded, nobody paged"
        )
        return self._quiet(a.snapshot(now, why), why, "downgraded")

    def _rearm(self, a: Alert, now: float) -> Decision:
        return self._say(a, "repeated", now, a.told, a.rearm(now))

    def _resolve(self, a: Alert, now: float, why: str, actor: str = "system") -> Decision:
        told = tuple(a.told)
        why += (
            f"; resolution sent to everyone told: {names(told)}"
            if told
            else "; shown on the ward dashboard"
        )
        a.state, a.resolved_ts, a.resolved_by = "resolved", now, actor
        self._alerts.pop(a.key, None)
        return self._say(a, "resolved", now, told, why, actor)

    def _say(
        self,
        a: Alert,
        event: str,
        now: float,
        receivers: Iterable[str],
        why: str,
        actor: str = "system",
    ) -> Decision:
        receivers = tuple(receivers)
        a.updated_ts = now
        return Decision(
            a.snapshot(now, why),
            event,
            True,
            receivers,
            channels(self.settings, receivers),
            why,
            actor,
        )

    def _quiet(
        self, snap: dict[str, Any], why: str, event: str = "suppressed", actor: str = "system"
    ) -> Decision:
        return Decision(snap, event, False, (), (), why, actor)
