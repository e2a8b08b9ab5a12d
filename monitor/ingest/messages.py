"""What the decoders produce: small immutable records, one per inbound message kind.

Times are epoch seconds (UTC, float). Decoders raise `Rejected` with a reason a person
can act on; a rejected message never reaches storage or a patient's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.clinical.thresholds import ACVPU, NUMERIC_VITALS, VITAL_RANGES, VITALS

# The records' vocabulary, re-exported for the decoders.
__all__ = ["ACVPU", "NUMERIC_VITALS", "VITAL_RANGES", "VITALS"]


class Rejected(Exception):
    """A message that cannot be accepted; `reason` is published on {p}/rejected."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Observation:
    """One time point of one bed: the vitals measured at `ts` (any non-empty subset)."""

    ts: float
    values: dict[str, float | str]

    def __reduce__(self) -> tuple:
        # pickled as its two fields (a split replay hands every reading to the grading
        # process): the slots dataclass default sets each field through a Python loop
        return (Observation, (self.ts, self.values))


@dataclass(frozen=True, slots=True)
class Admission:
    patient_id: str
    ts: float
    age: float | None = None
    product: str | None = None
    indication: str | None = None
    infusion_ts: float | None = None
    spo2_scale: int = 1


@dataclass(frozen=True, slots=True)
class Discharge:
    ts: float
    patient_id: str | None = None


@dataclass(frozen=True, slots=True)
class CareEvent:
    """oxygen | vasopressor | medication | neuro; `data` holds the type's own fields."""

    ts: float
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    state: str  # "online" | "offline"
