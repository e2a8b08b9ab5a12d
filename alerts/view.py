"""What the alert rules read of one bed: a typed, frozen view, never the wire JSON.

The daemon builds it from its assessment (`monitor.state.view.bed_view`) and publishes it
(`monitor.state.view.to_wire`, SPEC.md's state payload); the rules read it here. Each
scale keeps its own reasons, so no reason is ever sorted into a scale by its wording.
Times are epoch seconds. An empty bed (discharged) has `patient_id` None and no grades.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class GradeView:
    """A CRS or ICANS grade: None when undecided, then `at_least` is its lower bound."""

    grade: int | None
    at_least: int | None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class News2View:
    total: int
    band: str | None
    band_at_least: str | None
    complete: bool
    single_parameter_3: bool
    reasons: tuple[str, ...] = ()
    scores: Mapping[str, int] = field(default_factory=dict)  # parameter -> its score


@dataclass(frozen=True, slots=True)
class VitalView:
    """A vital's newest reading (value, when) and how fresh it is: live, stale, lost or
    missing (configured, never reported in this admission)."""

    value: Any
    ts: float | None
    status: str


@dataclass(frozen=True, slots=True)
class BedView:
    ward: str
    bed: str
    patient_id: str | None
    ts: float | None  # the moment graded
    crs: GradeView | None = None
    icans: GradeView | None = None
    news2: News2View | None = None
    vitals: Mapping[str, VitalView] = field(default_factory=dict)
    device: str | None = None  # "online", "offline", or None: not known
    risk: Mapping[str, Any] = field(default_factory=dict)  # {} or {"p", "explanation", ...}
    fever_masked: bool = False
    day: str | None = None  # "D+3"
    # What the policy read beside the grades (artefact notes, episode state), by name.
    notes: tuple[str, ...] = ()

    def alert_key(self) -> tuple:
        """Everything the alert rules read, without the readings' times: a new view with
        the same key needs no evaluation (time-driven changes are the engine's tick)."""
        return (
            self.patient_id,
            self.crs,
            self.icans,
            self.news2,
            self.device,
            tuple(sorted((k, v.status) for k, v in self.vitals.items())),
            round(float(self.risk.get("p", -1.0)), 2),
            self.notes,
        )

    def undecided(self) -> frozenset[str]:
        """Kinds whose measure is unknown now: an alert of such a kind is kept, not resolved."""
        out = set()
        if self.crs is None or self.crs.grade is None:
            out.add("crs")
        if self.icans is None or self.icans.grade is None:
            out.add("icans")
        if self.news2 is None or not self.news2.complete:
            out.add("news2")
        return frozenset(out)
