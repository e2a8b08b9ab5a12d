"""Who is told: named receivers with channels, and one route (a chain of stages) per tier.

A route's chain is a tuple of stages; every receiver of a stage is told at once. Stage 0 is
told when the alert is raised, stage n+1 when stage n has gone `escalate_after_s` without an
acknowledgement. Tier 1 (advisory) has no route: it goes to the ward dashboard only, never
escalates and never repeats (the dashboard shows it for as long as it lasts).

Channels are names; delivery is the daemon's job. `deliveries()` lists what to send where
(a webhook with its url and secret); decisions and audit records carry receiver and channel
names only, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import AlertSettings

CHANNELS = ("dashboard", "mqtt", "webhook")
DASHBOARD_ONLY = ("dashboard",)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str = field(repr=False)  # HMAC signing key; never logged


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    channels: tuple[str, ...]
    webhook: Webhook | None = None


@dataclass(frozen=True, slots=True)
class Route:
    tier: int
    chain: tuple[tuple[str, ...], ...]
    escalate_after_s: float
    repeat_interval_s: float

    def stage(self, level: int) -> tuple[str, ...]:
        """The receivers of stage `level`, clamped to the chain (a restored alert may carry a
        level from a longer chain of an older config)."""
        return self.chain[max(0, min(level, len(self.chain) - 1))]

    def last_stage(self, level: int) -> bool:
        return level >= len(self.chain) - 1


def route_for(settings: AlertSettings, tier: int) -> Route | None:
    """The route of a tier; None for tier 1 (dashboard only)."""
    return settings.routes.get(tier)


def first_stage(settings: AlertSettings, tier: int) -> tuple[str, ...]:
    route = route_for(settings, tier)
    return route.stage(0) if route else ()


def channels(settings: AlertSettings, receivers: Iterable[str]) -> tuple[str, ...]:
    """The channels these receivers are reached on, sorted; the dashboard alone when nobody
    is named (tier 1). A name no longer configured (a restored alert) is skipped."""
    found = {
        c for r in receivers if r in settings.receivers for c in settings.receivers[r].channels
    }
    return tuple(sorted(found)) or DASHBOARD_ONLY


def deliveries(
    settings: AlertSettings, receivers: Iterable[str]
) -> list[tuple[str, str, Webhook | None]]:
    """(receiver, channel, webhook or None) for each channel of each known receiver."""
    out = []
    for name in receivers:
        receiver = settings.receivers.get(name)
        if receiver is None:
            continue
        for channel in receiver.channels:
            out.append((name, channel, receiver.webhook if channel == "webhook" else None))
    return out


def names(receivers: Iterable[str]) -> str:
    """'bedside_nurse, charge_nurse', or 'the ward dashboard' when nobody is named."""
    return ", ".join(receivers) or "the ward dashboard"


def merge(*groups: Iterable[str]) -> tuple[str, ...]:
    """Receivers in first-told order, each once."""
    return tuple(dict.fromkeys(r for g in groups for r in g))
