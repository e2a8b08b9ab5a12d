"""Stage 2: inhibition. A firing alert or condition mutes others that say less.

One protocol for every muter (here, and acknowledgement in `ack.py`), as in Alertmanager:
`mutes(target) -> reason | None`; the reason is named and shown ("inhibited by tier 2
device alert"). Targets and sources are anything with `kind`, `tier`, `ward` and `bed`
(a Condition or an Alert).

Rules:
- Same kind, same bed: a higher tier mutes a lower one (two "crs" conditions: the grade 3
  one stands). `collapse()` applies it to a list of conditions.
- The cross-kind table RULES below, each with why. A source mutes a target of lower tier
  (`strictly_higher`) or of lower or equal tier.
A muted alert is not forgotten: it resolves like any other, and its resolution still reaches
everyone told. A muted condition is raised as soon as nothing mutes it any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any, Protocol


class Muter(Protocol):
    def mutes(self, target: Any) -> str | None: ...


@dataclass(frozen=True, slots=True)
class InhibitRule:
    sources: tuple[str, ...]  # kind patterns (fnmatch) of the muting alert
    targets: tuple[str, ...]  # kind patterns of the muted one
    scope: str  # "bed": same ward and bed; "any": every bed (the daemon's own alerts)
    strictly_higher: bool  # the source's tier must exceed the target's (else >=)
    why: str


RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        ("device",),
        ("feed", "signal"),
        "bed",
        False,
        "an offline device explains its stale and lost feeds and odd readings: one alert "
        "names the cause",
    ),
    InhibitRule(
        ("broker", "lag"),
        ("device", "feed", "signal"),
        "any",
        False,
        "without the broker, or with the daemon behind its input, no bed's device or feeds "
        "can report: the daemon's own alert says so once, never a patient's feed lost",
    ),
    InhibitRule(
        ("crs", "icans"),
        ("news2",),
        "bed",
        False,
        "a CRS/ICANS alert of the same or a higher tier already calls the same team to "
        "this bed; a NEWS2 alert on the same deterioration adds nothing (the tile shows "
        "the score; only a higher NEWS2, high at tier 3 over an urgent grade, pages again)",
    ),
    InhibitRule(
        ("crs", "icans", "news2"),
        ("risk",),
        "bed",
        False,
        "the deterioration the forecast warns of is already alerting",
    ),
)


@lru_cache(maxsize=4096)  # kinds and patterns are few; asked for every bed and alert
def _matches(kind: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(kind, p) for p in patterns)


def rule_mutes(source: Any, target: Any, rules: Iterable[InhibitRule] = RULES) -> bool:
    """Whether `source` mutes `target` (same-kind rule included)."""
    same_bed = (source.ward, source.bed) == (target.ward, target.bed)
    if source.kind == target.kind:
        return same_bed and source.tier > target.tier
    for rule in rules:
        if not (_matches(source.kind, rule.sources) and _matches(target.kind, rule.targets)):
            continue
        if rule.scope == "bed" and not same_bed:
            continue
        if source.tier > target.tier or (not rule.strictly_higher and source.tier >= target.tier):
            return True
    return False


def mutes(target: Any, context: Iterable[Any], rules: Iterable[InhibitRule] = RULES) -> str | None:
    """Why `target` is muted by something firing in `context`, or None.

    The highest-tier source is named. `target` itself is skipped if it is in `context`.
    """
    rules = tuple(rules)
    for source in sorted(context, key=lambda s: (-s.tier, s.kind, s.ward, s.bed)):
        if source is not target and rule_mutes(source, target, rules):
            return f"inhibited by tier {source.tier} {source.kind} alert"
    return None


class Inhibitor:
    """The Muter form of `mutes`, over a fixed context."""

    def __init__(self, context: Iterable[Any], rules: Iterable[InhibitRule] = RULES):
        self.context = list(context)
        self.rules = tuple(rules)

    def mutes(self, target: Any) -> str | None:
        return mutes(target, self.context, self.rules)


def collapse(conds: Iterable[Any]) -> tuple[list[Any], list[tuple[Any, str]]]:
    """One condition per (ward, bed, kind): the highest tier, then level, stands; the others
    come back with their reason. Cross-kind rules are left to the engine, which knows what
    is already firing."""
    best: dict[tuple[str, str, str], Any] = {}
    for c in conds:
        key = (c.ward, c.bed, c.kind)
        if key not in best or (c.tier, c.level) > (best[key].tier, best[key].level):
            best[key] = c
    kept = list(best.values())
    muted = [
        (c, f"inhibited by tier {best[(c.ward, c.bed, c.kind)].tier} {c.kind} alert")
        for c in conds
        if all(c is not k for k in kept)
    ]
    return kept, muted
