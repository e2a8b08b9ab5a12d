"""Checks shared by every decoder: times, vital values, units, and merging by time.

Everything here raises `Rejected` with a short reason that names the field and, where it
helps, the offending value; never a whole payload. The units senders write (UCUM and
their aliases) live here; the code tables (LOINC, MDC) in monitor/clinical/codes.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

import orjson

from monitor.clock import iso
from monitor.ingest.messages import ACVPU, VITAL_RANGES, Observation, Rejected

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # no bedside message comes near this
MAX_OBSERVATIONS = 1000  # elements of a JSON array, Observations of a Bundle


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
    value: object,
    now: float,
    max_future_s: float,
    max_past_s: float,
    field: str = "ts",
    local: bool = False,
    local_tz: tzinfo | None = None,
) -> float:
    """ISO 8601 with a zone or epoch seconds, inside the accepted window. With `local`
    (device formats), a time without a zone is read in `local_tz`, or rejected with a
    reason naming the setting when there is none."""
    try:
        ts = parse_local_ts(value, field, local_tz) if local else parse_ts(value, field)
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


def parse_local_ts(value: object, field: str, local_tz: tzinfo | None) -> float:
    """As parse_ts, but an ISO 8601 time without a zone is read in `local_tz` (the
    site's zone, config ingest.local_timezone) when one is set."""
    if local_tz is not None and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            return local_time(parsed, local_tz, field)
    try:
        return parse_ts(value, field)
    except Rejected as exc:
        if "without a zone" in exc.reason:
            raise Rejected(exc.reason + f"; {LOCAL_TZ_HINT}") from None
        raise


LOCAL_TZ_HINT = "set ingest.local_timezone to read such times in the site's zone"


def local_time(naive: datetime, zone: tzinfo, field: str) -> float:
    """A wall-clock time of `zone` -> epoch seconds. A time that does not exist (skipped
    by a daylight-saving change) or happens twice (the repeated hour) is rejected: which
    instant it means cannot be known, and a guess is not a measurement."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise Rejected(
            f"{field}: local time {naive.isoformat()} is ambiguous or does not exist in "
            f"{zone} (daylight-saving change); send it with a zone"
        )
    return first.timestamp()
