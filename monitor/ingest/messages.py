"""What the decoders produce: small immutable records, one per inbound message kind.

Times are epoch seconds (UTC, float). Decoders raise `Rejected` with a reason a person
can act on; a rejected message never reaches storage or a patient's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Numeric vitals, their units, and the plausible physical range a reading must fall in.
# Outside it the reading is impossible (a heart rate of 900, SpO2 of 120): the message is
# rejected. Inside it, odd values (HR 0 from a lead falling off) are accepted and left to
# the clinical layer to distrust.
VITAL_RANGES: dict[str, tuple[float, float, str]] = {
    "hr": (0, 300, "/min"),
    "rr": (0, 80, "/min"),
    "spo2": (0, 100, "%"),
    "sbp": (0, 300, "mmHg"),
    "dbp": (0, 250, "mmHg"),
    "map": (0, 250, "mmHg"),
    "temp_c": (25.0, 45.0, "Cel"),
    "o2_flow_lpm": (0, 80, "L/min"),
    "fio2": (0.21, 1.0, "1"),
}
NUMERIC_VITALS = tuple(VITAL_RANGES)
ACVPU = ("A", "C", "V", "P", "U")
VITALS = (*NUMERIC_VITALS, "acvpu")  # every field an observation may carry


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
