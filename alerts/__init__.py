"""CRSWatch alerting: pure stages from a bed's state to notify-or-stay-quiet decisions.

The chain, one module per stage (Prometheus Alertmanager's shape):

    rules       BedView (view.py) -> Conditions (kind, tier, reason, detail)  rules.py
    inhibit     a firing alert mutes others that say less (same kind, table)   inhibit.py
    hysteresis  enter at once, exit after a hold, NEWS2 exit margins           hysteresis.py
    ack/snooze  acknowledged or snoozed alerts mute repeats and escalation     ack.py
    dedup       one alert per (ward, bed, kind); an unchanged one says nothing engine.py
    escalation  the tier's chain of receivers, stage by stage, and repeats     escalation.py
    notify      Decision(alert, event, notify, receivers, channels, reason)    alert.py

routing.py names receivers and their channels; config.py parses and validates `[alerts]`;
audit.py chains every decision and user action into a tamper-evident log. engine.py runs
the chain over the active alerts. Nothing here does I/O, runs tasks or reads a clock: every
call takes `now` (epoch seconds); delivery, storage and publishing are the daemon's.
"""

from .alert import Alert, Decision
from .audit import AuditEvent, chain, verify
from .config import DEFAULT, AlertConfigError, AlertSettings, parse_alerting
from .engine import AlertEngine, UnknownAlert
from .rules import Condition, conditions, system_conditions

__all__ = [
    "DEFAULT",
    "Alert",
    "AlertConfigError",
    "AlertEngine",
    "AlertSettings",
    "AuditEvent",
    "Condition",
    "Decision",
    "UnknownAlert",
    "chain",
    "conditions",
    "parse_alerting",
    "system_conditions",
    "verify",
]
