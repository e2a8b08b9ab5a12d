"""The `score` command: one bedside snapshot (JSON) in, its grades (JSON) out.

Input and output shapes are in SPEC.md ("`score`: one bedside snapshot"); the rules in
CLINICAL.md. A missing key or a null means unknown, never normal. Anything the scales could
misread is rejected with a ValueError that names the key: unknown keys, wrong types, booleans
where numbers are expected, impossible or contradictory values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

from monitor.clinical.crs import crs_grade
from monitor.clinical.icans import icans_grade
from monitor.clinical.news2 import news2
from monitor.clinical.snapshot import Snapshot
from monitor.clinical.thresholds import (
    ACVPU,
    MAX_DRUG_NAME,
    O2_DEVICES,
    VASOPRESSORS,
    VITAL_RANGES,
    canonical_drug,
)

EDEMA_VALUES = ("focal", "diffuse")
SPO2_SCALES = (1, 2)
UNIT_TEXT = {"Cel": " C", "1": ""}  # UCUM units in VITAL_RANGES, as a person reads them


def _describe(value: object) -> str:
    """A short description of a bad value for an error line (never the whole value)."""
    if value is True or value is False:
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:32]!r}"
    if isinstance(value, int | float):
        return f"the number {_number_text(value)}"
    return f"a {type(value).__name__}"


def _number_text(value: float) -> str:
    return repr(value) if abs(value) < 1e9 else "a very large number"


def _number(key: str, value: object) -> float:
    """A vital: a finite number (not a boolean) inside its plausible physical range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: expected a number, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}: expected a finite number")
    low, high, unit = VITAL_RANGES[key]
    if not low <= value <= high:
        shown_unit = UNIT_TEXT.get(unit, f" {unit}")
        raise ValueError(f"{key}: {_number_text(value)} is outside {low:g}-{high:g}{shown_unit}")
    return float(value)


def _boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true, false or null, got {_describe(value)}")
    return value


def _choice(allowed: tuple[Any, ...]) -> Callable[[str, object], Any]:
    """One of a fixed set of strings or integers; same type only (no 2.0, "2" or true)."""

    def parse(key: str, value: object) -> Any:
        if type(value) is not type(allowed[0]) or value not in allowed:
            raise ValueError(f"{key}: expected one of {_listing(allowed)}, got {_describe(value)}")
        return value

    return parse


def _listing(allowed: tuple[Any, ...]) -> str:
    return "|".join(str(a) for a in allowed)


def _ice_score(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: expected an integer 0-10, got {_describe(value)}")
    if not 0 <= value <= 10:
        raise ValueError(f"{key}: {_number_text(value)} is outside 0-10")
    return value


def _drugs(key: str, value: object) -> tuple[str, ...]:
    """Vasopressors running now: a list of drug names ([] = known none)."""
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list of drug names, got {_describe(value)}")
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{key}: each drug must be a non-empty string, got {_describe(item)}")
        if len(item) > MAX_DRUG_NAME:
            raise ValueError(f"{key}: drug name longer than {MAX_DRUG_NAME} characters")
        known = canonical_drug(item, VASOPRESSORS)
        if known is None:
            raise ValueError(
                f"{key}: {item[:MAX_DRUG_NAME]!r} is not a vasopressor of the vocabulary "
                f"({', '.join(sorted(VASOPRESSORS))})"
            )
        names.append(known)
    return tuple(names)


PARSERS: dict[str, Callable[[str, object], Any]] = {
    **{name: _number for name in ("temp_c", "hr", "rr", "spo2", "sbp", "dbp", "map")},
    "acvpu": _choice(ACVPU),
    "o2_device": _choice(O2_DEVICES),
    "o2_flow_lpm": _number,
    "fio2": _number,
    "vasopressors": _drugs,
    "spo2_scale": _choice(SPO2_SCALES),
    "fever_masked": _boolean,
    "ice_score": _ice_score,
    "seizure": _boolean,
    "seizure_prolonged": _boolean,
    "motor_weakness": _boolean,
    "cerebral_edema": _choice(EDEMA_VALUES),
    "hypotension_sustained": _boolean,
    "hypoxaemia_sustained": _boolean,
}


def snapshot_from_json(obj: object) -> Snapshot:
    """A Snapshot from a parsed JSON object; ValueError naming the key when it is invalid."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {_describe(obj)}")
    values: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in PARSERS:
            shown = key[:40] if isinstance(key, str) else key
            raise ValueError(f"unknown key {shown!r}")
        if value is not None:  # null = unknown; spo2_scale and fever_masked keep defaults
            values[key] = PARSERS[key](key, value)
    _check_consistency(values)
    return Snapshot(**values)


def _check_consistency(v: dict[str, Any]) -> None:
    """Values that cannot be true together."""
    if v.get("seizure") is False and v.get("seizure_prolonged") is True:
        raise ValueError("seizure_prolonged: true while seizure is false")
    if v.get("o2_device") == "room_air":
        if v.get("o2_flow_lpm", 0) > 0:
            raise ValueError("o2_flow_lpm: oxygen flow given with o2_device room_air")
        if v.get("fio2", 0.21) > 0.21:
            raise ValueError("fio2: above 0.21 with o2_device room_air")
    sbp, dbp, mean = v.get("sbp"), v.get("dbp"), v.get("map")
    if sbp is not None and dbp is not None and dbp > sbp:
        raise ValueError("dbp: diastolic above systolic")
    if sbp is not None and mean is not None and mean > sbp:
        raise ValueError("map: mean pressure above systolic")
    if dbp is not None and mean is not None and mean < dbp:
        raise ValueError("map: mean pressure below diastolic")


def score_snapshot(s: Snapshot) -> dict[str, Any]:
    """The SPEC `score` output: grades (null when undecided), bounds, NEWS2, reasons."""
    crs = crs_grade(s)
    icans = icans_grade(s)
    n = news2(s)
    return {
        "crs_grade": crs.grade,
        "crs_at_least": crs.at_least,
        "icans_grade": icans.grade,
        "icans_at_least": icans.at_least,
        "news2": {
            "total": n.total,
            "band": n.band,
            "band_at_least": n.band_at_least,
            "single_parameter_3": n.single_parameter_3,
            "complete": n.complete,
            "missing": list(n.missing),
        },
        "reasons": [*crs.reasons, *icans.reasons, *n.reasons],
    }


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def main_score(stdin_text: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python main.py score` for the given stdin."""
    try:
        obj = orjson.loads(stdin_text)
    except orjson.JSONDecodeError as e:
        return 2, "", f"score: invalid JSON: {_one_line(e)}\n"
    try:
        result = score_snapshot(snapshot_from_json(obj))
    except ValueError as e:
        return 2, "", f"score: invalid snapshot: {_one_line(e)}\n"
    return 0, orjson.dumps(result).decode() + "\n", ""
