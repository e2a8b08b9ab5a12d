"""The `[alerts]` configuration: parsed and validated whole, one message per mistake.

Shape (a dict as `tomllib` reads the `[alerts]` table; every key optional, DEFAULT below):

    [alerts]
    tier2_escalate_after_s = 600   # SPEC keys; the same as [alerts.tier2] escalate_after_s
    tier3_escalate_after_s = 300
    escalate_after_s = ...         # inherited by tiers that set neither of the above
    repeat_interval_s = 300        # inherited by tier 2 and tier 3 unless they set their own
    resolve_hold_s = 300           # a condition absent this long resolves its alert
    advisory_hold_s = 0            # a tier-1 condition must hold this long before it shows
    max_snooze_s = 1800            # longest snooze a user can ask for
    risk_threshold = 0.5           # forecast probability that raises a tier-2 "risk" alert
    timezone = "UTC"               # for times in reasons ("snoozed until 10:45")

    [alerts.receivers.physician_on_call]    # merged over the default receivers
    channels = ["dashboard", "mqtt", "webhook"]
    webhook = { url = "https://pager.example.org/hook", secret = "..." }

    [alerts.tier2]
    chain = [["bedside_nurse", "physician_on_call"], "charge_nurse", "attending"]
    repeat_interval_s = 300        # overrides the inherited value for this tier only

A chain is a list of stages; a stage is a receiver name or a list of names told together.
Inheritance (Alertmanager-style): a tier's own key, else the SPEC key (escalation only),
else the top-level key, else the built-in default. A failed parse changes nothing: the
caller keeps its old settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from .routing import CHANNELS, Receiver, Route, Webhook

# (key, default, help): each top-level setting declared once.
SETTINGS: tuple[tuple[str, Any, str], ...] = (
    ("tier2_escalate_after_s", None, "Tier-2 escalation delay (default 600)."),
    ("tier3_escalate_after_s", None, "Tier-3 escalation delay (default 300)."),
    ("escalate_after_s", None, "Escalation delay inherited by tiers that set none."),
    ("repeat_interval_s", 300.0, "Re-notify those told while unacknowledged, this often."),
    ("resolve_hold_s", 300.0, "A condition absent (or lower) this long resolves (downgrades)."),
    ("advisory_hold_s", 0.0, "A tier-1 condition must hold this long before it shows."),
    ("max_snooze_s", 1800.0, "The longest snooze."),
    ("risk_threshold", 0.5, "Forecast probability raising a tier-2 risk alert."),
    ("timezone", "UTC", "Zone of the clock times written in reasons."),
)
BUILTIN_ESCALATE = {2: 600.0, 3: 300.0}
DEFAULT_RECEIVERS = (
    "bedside_nurse",
    "charge_nurse",
    "physician_on_call",
    "rapid_response",
    "attending",
)
DEFAULT_CHAINS: dict[int, list[Any]] = {
    2: [["bedside_nurse", "physician_on_call"], "charge_nurse", "attending"],
    3: [["physician_on_call", "rapid_response"], "attending"],
}
TIER_KEYS = ("chain", "escalate_after_s", "repeat_interval_s")
RECEIVER_KEYS = ("channels", "webhook")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class AlertConfigError(ValueError):
    """Every mistake found, one per line (`errors` holds them as a list)."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class AlertSettings:
    receivers: dict[str, Receiver]
    routes: dict[int, Route]
    resolve_hold_s: float = 300.0
    advisory_hold_s: float = 0.0
    max_snooze_s: float = 1800.0
    risk_threshold: float = 0.5
    timezone: str = "UTC"

    def clock(self, ts: float) -> str:
        """'10:45' in the configured zone, for reasons."""
        return datetime.fromtimestamp(ts, _zone(self.timezone)).strftime("%H:%M")


def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _number(where: str, value: Any, errors: list[str], positive: bool = False) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        what = "a number" if where.endswith("threshold") else "a number of seconds"
        errors.append(f"{where}: expected {what}, got {type(value).__name__}")
        return None
    if value < 0:
        errors.append(f"{where}: must not be negative (got {value})")
        return None
    if positive and value == 0:
        errors.append(f"{where}: must be more than 0")
        return None
    return float(value)


def _unknown(where: str, table: dict, known: tuple[str, ...], errors: list[str]) -> None:
    for key in table:
        if key not in known:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(known)})")


def _receivers(table: Any, errors: list[str]) -> dict[str, Receiver]:
    out = {name: Receiver(name, ("dashboard", "mqtt")) for name in DEFAULT_RECEIVERS}
    if not isinstance(table, dict):
        errors.append("alerts.receivers: expected a table of receivers")
        return out
    for name, spec in table.items():
        where = f"alerts.receivers.{name}"
        if not _NAME.match(name):
            errors.append(f"{where}: a receiver name is 1-64 of A-Z a-z 0-9 _ . -")
        if not isinstance(spec, dict):
            errors.append(f"{where}: expected a table with channels")
            continue
        _unknown(where, spec, RECEIVER_KEYS, errors)
        chans = spec.get("channels")
        if not isinstance(chans, list) or not chans or not all(isinstance(c, str) for c in chans):
            errors.append(
                f"{where}.channels: expected a non-empty list of channel names "
                f"({', '.join(CHANNELS)})"
            )
            chans = []
        for c in chans:
            if c not in CHANNELS:
                errors.append(
                    f"{where}.channels: unknown channel {c!r} (known: {', '.join(CHANNELS)})"
                )
        out[name] = Receiver(
            name,
            tuple(dict.fromkeys(chans)),
            _webhook(where, spec.get("webhook"), "webhook" in chans, errors),
        )
    return out


def _webhook(where: str, spec: Any, wanted: bool, errors: list[str]) -> Webhook | None:
    if spec is None:
        if wanted:
            errors.append(f"{where}: channel webhook needs a webhook table with url and secret")
        return None
    if not wanted:
        errors.append(f"{where}.webhook: given, but 'webhook' is not in channels")
    if not isinstance(spec, dict):
        errors.append(f"{where}.webhook: expected a table with url and secret")
        return None
    _unknown(f"{where}.webhook", spec, ("url", "secret"), errors)
    url, secret = spec.get("url"), spec.get("secret")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        errors.append(f"{where}.webhook.url: expected an http:// or https:// URL")
    if not isinstance(secret, str) or not secret:
        errors.append(f"{where}.webhook.secret: expected a non-empty signing secret")
    return Webhook(str(url), str(secret))


def _chain(
    where: str, value: Any, receivers: dict[str, Receiver], errors: list[str]
) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of stages (a name or a list of names)")
        return ()
    if not value:
        errors.append(f"{where}: empty: an alert of this tier must reach someone")
    stages, seen = [], set()
    for i, stage in enumerate(value):
        names = [stage] if isinstance(stage, str) else stage
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            errors.append(f"{where}[{i}]: a stage is a receiver name or a non-empty list")
            continue
        for n in names:
            if n not in receivers:
                errors.append(
                    f"{where}: unknown receiver {n!r} (defined: {', '.join(sorted(receivers))})"
                )
            elif n in seen:
                errors.append(f"{where}: receiver {n!r} appears in more than one stage")
            seen.add(n)
        stages.append(tuple(dict.fromkeys(names)))
    return tuple(stages)


def _route(
    tier: int, data: dict, top: dict[str, Any], receivers: dict[str, Receiver], errors: list[str]
) -> Route:
    where = f"alerts.tier{tier}"
    table = data.get(f"tier{tier}", {})
    if not isinstance(table, dict):
        errors.append(f"{where}: expected a table")
        table = {}
    _unknown(where, table, TIER_KEYS, errors)
    chain_where = f"{where}.chain" + ("" if "chain" in table else " (default)")
    chain = _chain(chain_where, table.get("chain", DEFAULT_CHAINS[tier]), receivers, errors)
    spec_key = f"tier{tier}_escalate_after_s"
    if "escalate_after_s" in table and spec_key in data:
        errors.append(f"{where}.escalate_after_s and alerts.{spec_key} are both set: keep one")
    escalate = (
        _number(f"{where}.escalate_after_s", table["escalate_after_s"], errors, True)
        if "escalate_after_s" in table
        else top[spec_key] or top["escalate_after_s"] or BUILTIN_ESCALATE[tier]
    )
    repeat = (
        _number(f"{where}.repeat_interval_s", table["repeat_interval_s"], errors, True)
        if "repeat_interval_s" in table
        else top["repeat_interval_s"]
    )
    # Any positive escalation delay is valid (SPEC.md), shorter than the repeat interval
    # included: escalating before the first reminder is a normal rota.
    return Route(tier, chain, escalate or BUILTIN_ESCALATE[tier], repeat or 300.0)


def parse_alerting(data: dict[str, Any] | None) -> AlertSettings:
    """The whole `[alerts]` table -> AlertSettings, or AlertConfigError listing every mistake."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise AlertConfigError(["[alerts]: expected a table"])
    errors: list[str] = []
    known = tuple(k for k, _, _ in SETTINGS) + ("receivers", "tier2", "tier3")
    for key in data:
        if key == "tier1":
            errors.append(
                "alerts.tier1: tier 1 (advisory) goes to the ward dashboard only; "
                "it has no chain, escalation or repeats"
            )
        elif key not in known:
            errors.append(f"alerts.{key}: unknown key (known: {', '.join(known)})")
    top: dict[str, Any] = {}
    for key, default, _ in SETTINGS:
        value = data.get(key, default)
        if key == "timezone":
            top[key] = _timezone(value, errors)
        elif value is None:
            top[key] = None
        else:
            top[key] = _number(
                f"alerts.{key}",
                value,
                errors,
                positive=key not in ("resolve_hold_s", "advisory_hold_s"),
            )
    if top["risk_threshold"] is not None and top["risk_threshold"] > 1:
        errors.append(
            f"alerts.risk_threshold: a probability, 0 < p <= 1 (got {top['risk_threshold']:g})"
        )
    receivers = _receivers(data.get("receivers", {}), errors)
    routes = {t: _route(t, data, top, receivers, errors) for t in (2, 3)}
    if errors:
        raise AlertConfigError(errors)
    return AlertSettings(
        receivers=receivers,
        routes=routes,
        resolve_hold_s=top["resolve_hold_s"],
        advisory_hold_s=top["advisory_hold_s"],
        max_snooze_s=top["max_snooze_s"],
        risk_threshold=top["risk_threshold"],
        timezone=top["timezone"],
    )


def _timezone(value: Any, errors: list[str]) -> str:
    if not isinstance(value, str):
        errors.append('alerts.timezone: expected a zone name such as "Europe/Paris"')
        return "UTC"
    try:
        _zone(value)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        errors.append(f"alerts.timezone: unknown time zone {value!r}")
        return "UTC"
    return value


DEFAULT = parse_alerting({})
