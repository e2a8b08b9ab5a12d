"""Checks shared by every decoder: times, vital values, units, and merging by time.

Everything here raises `Rejected` with a short reason that names the field and, where it
helps, the offending value; never a whole payload. The code tables that more than one
format uses (LOINC for FHIR and HL7, UCUM units) live here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from monitor.clock import iso
from monitor.ingest.messages import ACVPU, VITAL_RANGES, Observation, Rejected

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # no bedside message comes near this
MAX_OBSERVATIONS = 1000  # elements of a JSON array, Observations of a Bundle

# LOINC (http://loinc.org) codes of the vitals CRSWatch reads, for FHIR and HL7 (LN).
LOINC_VITALS: dict[str, str] = {
    "8867-4": "hr",  # Heart rate
    "9279-1": "rr",  # Respiratory rate
    "59408-5": "spo2",  # Oxygen saturation ... by Pulse oximetry
    "2708-6": "spo2",  # Oxygen saturation in Arterial blood (FHIR vital-signs SpO2)
    "8310-5": "temp_c",  # Body temperature
    "8331-1": "temp_c",  # Oral temperature
    "8332-9": "temp_c",  # Rectal temperature
    "8333-7": "temp_c",  # Tympanic membrane temperature
    "8328-7": "temp_c",  # Axillary temperature
    "8329-5": "temp_c",  # Body temperature - Core
    "8480-6": "sbp",  # Systolic blood pressure
    "8462-4": "dbp",  # Diastolic blood pressure
    "8478-0": "map",  # Mean blood pressure
    "3151-8": "o2_flow_lpm",  # Inhaled oxygen flow rate
    "3150-0": "fio2",  # Inhaled oxygen concentration
}
LOINC_BP_PANELS = frozenset({"85354-9", "55284-4"})  # components carry sbp/dbp/map
LOINC_SYSTEMS = frozenset({"http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"})
UCUM_SYSTEM = "http://unitsofmeasure.org"


# Units: what senders write (lower-cased) -> the UCUM code we reason with.
UNIT_ALIASES: dict[str, str] = {
    "/min": "/min",
    "1/min": "/min",
    "{beats}/min": "{beats}/min",
    "{beat}/min": "{beats}/min",
    "bpm": "{beats}/min",
    "beats/min": "{beats}/min",
    "beats/minute": "{beats}/min",
    "{breaths}/min": "{breaths}/min",
    "{breath}/min": "{breaths}/min",
    "{resp}/min": "{breaths}/min",
    "breaths/min": "{breaths}/min",
    "breaths/minute": "{breaths}/min",
    "rpm": "{breaths}/min",
    "%": "%",
    "mm[hg]": "mm[Hg]",
    "mmhg": "mm[Hg]",
    "mm hg": "mm[Hg]",
    "cel": "Cel",
    "degc": "Cel",
    "°c": "Cel",
    "c": "Cel",
    "[degf]": "[degF]",
    "degf": "[degF]",
    "°f": "[degF]",
    "f": "[degF]",
    "l/min": "L/min",
    "lpm": "L/min",
    "1": "1",
    "{ratio}": "1",
    "{fraction}": "1",
}


def _same(value: float) -> float:
    return value


def _fahrenheit_to_celsius(value: float) -> float:
    return round((value - 32.0) * 5.0 / 9.0, 2)


def _percent_to_fraction(value: float) -> float:
    return round(value / 100.0, 6)


_PER_MIN = {"/min": _same}
_MMHG = {"mm[Hg]": _same}
# vital -> {UCUM unit accepted for it: conversion to the unit of VITAL_RANGES}
UNITS_FOR: dict[str, dict[str, Callable[[float], float]]] = {
    "hr": {**_PER_MIN, "{beats}/min": _same},
    "rr": {**_PER_MIN, "{breaths}/min": _same},
    "spo2": {"%": _same},
    "sbp": _MMHG,
    "dbp": _MMHG,
    "map": _MMHG,
    "temp_c": {"Cel": _same, "[degF]": _fahrenheit_to_celsius},
    "o2_flow_lpm": {"L/min": _same},
    "fio2": {"%": _percent_to_fraction, "1": _same},
}


def normalise_unit(raw: str) -> str | None:
    """A sender's unit string -> the UCUM code we know it as, or None."""
    return UNIT_ALIASES.get(raw.strip().lower())


def convert_unit(name: str, value: float, unit: str | None, where: str) -> float:
    """`value` in `unit` (as sent) -> the unit of VITAL_RANGES[name], or Rejected."""
    if not unit:
        raise Rejected(f"{where}: no unit for {name}")
    ucum = normalise_unit(unit)
    convert = UNITS_FOR[name].get(ucum) if ucum else None
    if convert is None:
        accepted = ", ".join(UNITS_FOR[name])
        raise Rejected(f"{where}: unit {unit[:20]!r} is wrong for {name} (expected {accepted})")
    return convert(value)


def fmt(value: float) -> str:
    """A number for a reason: 900, 37.5, 300.0001, 1e+300."""
    return f"{value:.10g}"


def safe_iso(ts: float) -> str:
    try:
        return iso(ts) or fmt(ts)
    except (OverflowError, ValueError, OSError):
        return fmt(ts)


def check_time(
    ts: float, now: float, max_future_s: float, max_past_s: float, field: str = "ts"
) -> float:
    """`ts` unless it lies more than max_future_s ahead of `now` or max_past_s behind it."""
    if not math.isfinite(ts):
        raise Rejected(f"{field}: not a finite time")
    ahead = ts - now
    if ahead > max_future_s:
        raise Rejected(
            f"{field}: {safe_iso(ts)} is {ahead:.0f} s in the future (limit {max_future_s:.0f} s)"
        )
    if -ahead > max_past_s:
        raise Rejected(
            f"{field}: {safe_iso(ts)} is {-ahead:.0f} s in the past (limit {max_past_s:.0f} s)"
        )
    return ts


def parse_time(
    value: object, now: float, max_future_s: float, max_past_s: float, field: str = "ts"
) -> float:
    """ISO 8601 with a zone or epoch seconds, inside the accepted window."""
    try:
        ts = parse_ts(value, field)
    except (ValueError, OverflowError, OSError):  # a datetime the platform cannot hold
        raise Rejected(f"{field}: not a representable time") from None
    return check_time(ts, now, max_future_s, max_past_s, field)


def check_number(value: object, field: str) -> float:
    """A real, finite JSON number (not a boolean, not a numeric string) -> float."""
    if isinstance(value, bool):
        raise Rejected(f"{field}: expected a number, got a boolean")
    if isinstance(value, int):
        if abs(value) > 1e15:
            raise Rejected(f"{field}: number out of range")
        return float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected(f"{field}: not a finite number")
        return value
    raise Rejected(f"{field}: expected a number, got {type_name(value)}")


def check_value(name: str, value: object) -> float | str:
    """One vital, checked against VITAL_RANGES (numbers) or ACVPU."""
    if name == "acvpu":
        if not isinstance(value, str) or value.strip().upper() not in ACVPU:
            raise Rejected("acvpu: expected one of A, C, V, P, U")
        return value.strip().upper()
    if name not in VITAL_RANGES:
        raise Rejected(f"unknown field {name[:40]!r}")
    number = check_number(value, name)
    low, high, unit = VITAL_RANGES[name]
    if not low <= number <= high:
        shown = "" if unit == "1" else f" {'C' if unit == 'Cel' else unit}"
        raise Rejected(
            f"{name}: {fmt(number)}{shown} is outside the possible range {fmt(low)}-{fmt(high)}"
        )
    return number


def make_observation(ts: float, values: dict[str, Any]) -> Observation:
    """An Observation from already-parsed values; every value is checked, None is absent."""
    checked = {name: check_value(name, v) for name, v in values.items() if v is not None}
    if not checked:
        raise Rejected("no vitals in observation")
    return Observation(ts=ts, values=checked)


class ObservationSet:
    """The readings of one message, merged by time into Observations.

    Two readings of one vital at one time must agree; otherwise the message is rejected
    (it cannot be known which one is true).
    """

    def __init__(self) -> None:
        self._values: dict[float, dict[str, float | str]] = {}
        self._where: dict[tuple[float, str], str] = {}

    def add(self, ts: float, name: str, value: object, where: str) -> None:
        prefix = f"{where}: " if where else ""
        try:
            checked = check_value(name, value)
        except Rejected as exc:
            raise Rejected(prefix + exc.reason) from None
        group = self._values.setdefault(ts, {})
        if name in group and group[name] != checked:
            first = self._where[(ts, name)] or "another reading"
            raise Rejected(f"{prefix}{name} conflicts with {first} at {safe_iso(ts)}")
        group[name] = checked
        self._where.setdefault((ts, name), where)

    def __len__(self) -> int:
        return len(self._values)

    def observations(self) -> list[Observation]:
        """Oldest first."""
        return [Observation(ts=ts, values=dict(v)) for ts, v in sorted(self._values.items())]


def type_name(value: object) -> str:
    """How a JSON value is called in a reason."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def payload_bytes(payload: object) -> bytes:
    """The payload as bytes, with the size limit applied."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if isinstance(payload, bytearray | memoryview):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise Rejected("payload: expected bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(f"payload is {len(payload)} bytes (limit {MAX_PAYLOAD_BYTES})")
    return payload


def load_json(payload: object) -> Any:
    """Parse a JSON payload (UTF-8, no NaN or Infinity) or reject it."""
    data = payload_bytes(payload)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"payload is not valid JSON ({str(exc)[:80]})") from None


def parse_ts(value: object, field: str = "ts") -> float:
    """ISO 8601 with a zone, or epoch seconds -> epoch seconds. A naive time is rejected:
    a bedside clock without a zone cannot be placed on the ward's timeline."""
    if isinstance(value, bool):
        raise Rejected(f"{field}: expected ISO 8601 with a zone or epoch seconds, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Rejected(f"{field}: not a finite number")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Rejected(f"{field}: not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise Rejected(f"{field}: ISO 8601 time without a zone: {value[:40]!r}")
        return parsed.timestamp()
    if value is None:
        raise Rejected(f"{field}: missing")
    raise Rejected(f"{field}: expected ISO 8601 with a zone or epoch seconds")
