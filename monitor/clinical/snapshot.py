"""A bedside snapshot: everything the clinical scales read, at one moment.

Every field may be None, and None always means *unknown*, never normal. The `score`
command builds one from JSON; the daemon builds one per bed from its streams (bedstate.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.clinical.thresholds import ROOM_AIR_FIO2


@dataclass(frozen=True, slots=True)
class Snapshot:
    temp_c: float | None = None
    hr: float | None = None
    rr: float | None = None
    spo2: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    map: float | None = None
    acvpu: str | None = None  # A C V P U
    # Oxygen: device None = unknown; "room_air" = known to be on air.
    o2_device: str | None = None
    o2_flow_lpm: float | None = None
    fio2: float | None = None
    # Vasopressors running now: None = unknown, () = known none.
    vasopressors: tuple[str, ...] | None = None
    spo2_scale: int = 1
    # CRS was diagnosed earlier in this admission and an antipyretic or anti-cytokine
    # therapy was given since: fever is no longer required (CLINICAL.md).
    fever_masked: bool = False
    # Neurology (ICANS)
    ice_score: int | None = None
    seizure: bool | None = None
    seizure_prolonged: bool | None = None  # > 5 min or repetitive
    motor_weakness: bool | None = None
    cerebral_edema: str | None = None  # None | "focal" | "diffuse"
    # Sustained-ness, judged by the daemon from the stream (two consecutive readings, or one
    # standing 120 s). None: take this snapshot's values at face value (the `score` command,
    # where a person entered established values).
    hypotension_sustained: bool | None = None
    hypoxaemia_sustained: bool | None = None

    def oxygen_reported(self) -> bool:
        """A device reports oxygen given: a flow above 0 or an FiO2 above room air's (the
        components of a pulse-oximetry Observation, a ventilator's FiO2)."""
        return (self.o2_flow_lpm or 0) > 0 or (self.fio2 or 0) > ROOM_AIR_FIO2
