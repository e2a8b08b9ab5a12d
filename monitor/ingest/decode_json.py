"""CRSWatch's own JSON payloads (SPEC.md, "MQTT topics"): vitals, admit, discharge, care
events and device availability.

Every decoder is pure: bytes in, a record out, or `Rejected` with a short reason. Unknown
fields are rejected rather than ignored, so that a misspelt field ("infusion_time",
"spo2 ") is reported instead of silently lost. `null` means "absent" everywhere, except
`cerebral_edema`, where SPEC.md gives null the meaning "no oedema".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from monitor.clinical.thresholds import (
    CEREBRAL_EDEMA,
    MAX_DRUG_NAME,
    MEDICATIONS,
    O2_DEVICES,
    VASOPRESSORS,
    canonical_drug,
    lookalike_of,
)
from monitor.ingest.messages import (
    ACVPU,
    Admission,
    CareEvent,
    DeviceStatus,
    Discharge,
    Observation,
    Rejected,
)
from monitor.ingest.validate import (
    MAX_OBSERVATIONS,
    ObservationSet,
    check_number,
    fmt,
    load_json,
    make_observation,
    parse_time,
    payload_bytes,
    type_name,
)

DEFAULT_MAX_FUTURE_S = 300.0
DEFAULT_MAX_PAST_S = 14 * 86400.0
# An infusion time may be weeks old at admission, or planned for later today or tomorrow.
INFUSION_MAX_PAST_S = 60 * 86400.0
INFUSION_MAX_FUTURE_S = 2 * 86400.0

PATIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_TEXT = 100
DEVICE_STATES = ("online", "offline")


def decode_vitals(
    payload: bytes,
    now: float,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    max_past_s: float = DEFAULT_MAX_PAST_S,
) -> list[Observation]:
    """One observation object, or a non-empty array of at most 1000, -> Observations
    (oldest first; objects with the same `ts` merge, and must not disagree)."""
    data = load_json(payload)
    if isinstance(data, dict):
        items: list[Any] = [data]
        labels = [""]
    elif isinstance(data, list):
        if not data:
            raise Rejected("empty array: no observations")
        if len(data) > MAX_OBSERVATIONS:
            raise Rejected(f"array of {len(data)} observations (limit {MAX_OBSERVATIONS})")
        items = data
        labels = [f"[{i}]" for i in range(len(data))]
    else:
        raise Rejected(f"expected an observation object or an array, got {type_name(data)}")
    merged = ObservationSet()
    for item, where in zip(items, labels, strict=True):
        prefix = f"{where}: " if where else ""
        if not isinstance(item, dict):
            raise Rejected(f"{prefix}expected an observation object, got {type_name(item)}")
        values = {k: v for k, v in item.items() if k != "ts"}
        try:
            ts = parse_time(item.get("ts"), now, max_future_s, max_past_s)
            observation = make_observation(ts, values)
        except Rejected as exc:
            raise Rejected(prefix + exc.reason) from None
        if len(items) == 1:  # nothing to merge (the common case: one time point)
            return [observation]
        for name, value in observation.values.items():
            merged.add(ts, name, value, where)
    return merged.observations()


def decode_admit(
    payload: bytes,
    now: float,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    max_past_s: float = DEFAULT_MAX_PAST_S,
) -> Admission:
    """`{"patient_id", "ts", "age", "product", "indication", "infusion_ts", "spo2_scale"}`;
    patient_id and ts are required."""
    data = _object(payload)
    _only(data, ("patient_id", "ts", "age", "product", "indication", "infusion_ts", "spo2_scale"))
    patient_id = _patient_id(data.get("patient_id"))
    ts = parse_time(data.get("ts"), now, max_future_s, max_past_s)
    age = _optional_number(data, "age", 0, 120)
    infusion_ts = None
    if data.get("infusion_ts") is not None:
        infusion_ts = parse_time(
            data["infusion_ts"], now, INFUSION_MAX_FUTURE_S, INFUSION_MAX_PAST_S, "infusion_ts"
        )
    scale = data.get("spo2_scale")
    if scale is None:
        scale = 1
    elif isinstance(scale, bool) or scale not in (1, 2):
        raise Rejected("spo2_scale: expected 1 or 2")
    return Admission(
        patient_id=patient_id,
        ts=ts,
        age=age,
        product=_optional_text(data, "product"),
        indication=_optional_text(data, "indication"),
        infusion_ts=infusion_ts,
        spo2_scale=int(scale),
    )


def decode_discharge(
    payload: bytes,
    now: float,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    max_past_s: float = DEFAULT_MAX_PAST_S,
) -> Discharge:
    """An empty payload, or `{"ts", "patient_id"}` (both optional; ts defaults to now)."""
    if not payload_bytes(payload).strip():
        return Discharge(ts=now)
    data = _object(payload)
    _only(data, ("ts", "patient_id"))
    ts = now
    if data.get("ts") is not None:
        ts = parse_time(data["ts"], now, max_future_s, max_past_s)
    patient_id = None
    if data.get("patient_id") is not None:
        patient_id = _patient_id(data["patient_id"])
    return Discharge(ts=ts, patient_id=patient_id)


def decode_care(
    payload: bytes,
    now: float,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    max_past_s: float = DEFAULT_MAX_PAST_S,
) -> CareEvent:
    """An oxygen, vasopressor, medication or neuro event (SPEC.md); `data` holds the
    normalised fields that were present."""
    data = _object(payload)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise Rejected(f"type: expected a string, got {type_name(kind)}")
    kind = kind.strip().lower()
    if kind not in _CARE_TYPES:
        raise Rejected(f"type: unknown care event type (expected {', '.join(_CARE_TYPES)})")
    allowed, decode = _CARE_TYPES[kind]
    _only(data, ("ts", "type", *allowed))
    ts = parse_time(data.get("ts"), now, max_future_s, max_past_s)
    fields = {k: v for k, v in data.items() if k not in ("ts", "type")}
    return CareEvent(ts=ts, type=kind, data=decode(fields))


def decode_device(payload: bytes) -> DeviceStatus:
    """`online` / `offline`: plain text, a JSON string, or `{"state": ...}` (other keys of
    such a birth message are ignored)."""
    try:
        text = payload_bytes(payload).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Rejected("device: payload is not UTF-8 text") from None
    state: object = text
    if text.startswith(("{", '"')):
        state = load_json(text)
        if isinstance(state, dict):
            state = state.get("state")
    if isinstance(state, str) and state.strip().lower() in DEVICE_STATES:
        return DeviceStatus(state=state.strip().lower())
    raise Rejected("device: expected 'online' or 'offline'")


# Care event types ----------------------------------------------------------------------


def _oxygen(fields: dict[str, Any]) -> dict[str, Any]:
    device = fields.get("device")
    if not isinstance(device, str):
        raise Rejected(f"device: expected a string, got {type_name(device)}")
    device = device.strip().lower().replace(" ", "_").replace("-", "_")
    if device not in O2_DEVICES:
        raise Rejected(f"device: unknown oxygen device (expected one of {', '.join(O2_DEVICES)})")
    out: dict[str, Any] = {"device": device}
    flow = _optional_number(fields, "flow_lpm", 0, 80)
    fio2 = _optional_number(fields, "fio2", 0.21, 1.0, hint=" (a fraction, not a percentage)")
    if device == "room_air" and ((flow or 0) > 0 or (fio2 or 0.21) > 0.21):
        raise Rejected("room_air: no oxygen flow or FiO2 above 0.21 possible on room air")
    if flow is not None:
        out["flow_lpm"] = flow
    if fio2 is not None:
        out["fio2"] = fio2
    return out


def _vasopressor(fields: dict[str, Any]) -> dict[str, Any]:
    out = _drug(fields.get("drug"), VASOPRESSORS)
    action = fields.get("action")
    if not isinstance(action, str) or action.strip().lower() not in ("start", "stop"):
        raise Rejected("action: expected 'start' or 'stop'")
    out["action"] = action.strip().lower()
    if fields.get("dose") is not None:
        out["dose"] = _dose(fields["dose"])
    return out


def _medication(fields: dict[str, Any]) -> dict[str, Any]:
    out = _drug(fields.get("drug"), MEDICATIONS)
    if fields.get("dose") is not None:
        out["dose"] = _dose(fields["dose"])
    return out


def _neuro(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ice = fields.get("ice_score")
    if ice is not None:
        score = check_number(ice, "ice_score")
        if not score.is_integer() or not 0 <= score <= 10:
            raise Rejected("ice_score: expected a whole number 0-10")
        out["ice_score"] = int(score)
    acvpu = fields.get("acvpu")
    if acvpu is not None:
        if not isinstance(acvpu, str) or acvpu.strip().upper() not in ACVPU:
            raise Rejected("acvpu: expected one of A, C, V, P, U")
        out["acvpu"] = acvpu.strip().upper()
    for flag in ("seizure", "seizure_prolonged", "motor_weakness"):
        value = fields.get(flag)
        if value is not None:
            if not isinstance(value, bool):
                raise Rejected(f"{flag}: expected true or false, got {type_name(value)}")
            out[flag] = value
    if out.get("seizure_prolonged") and out.get("seizure") is False:
        raise Rejected("seizure_prolonged: true while seizure is false")
    if "cerebral_edema" in fields:  # null here is a finding: no oedema
        edema = fields["cerebral_edema"]
        if isinstance(edema, str) and edema.strip().lower() in ("none", ""):
            edema = None
        if edema is not None:
            if not isinstance(edema, str) or edema.strip().lower() not in CEREBRAL_EDEMA:
                raise Rejected("cerebral_edema: expected null, 'focal' or 'diffuse'")
            edema = edema.strip().lower()
        out["cerebral_edema"] = edema
    if not out:
        raise Rejected("neuro: no assessment in event")
    return out


_CARE_TYPES = {
    "oxygen": (("device", "flow_lpm", "fio2"), _oxygen),
    "vasopressor": (("drug", "action", "dose"), _vasopressor),
    "medication": (("drug", "dose"), _medication),
    "neuro": (
        ("ice_score", "acvpu", "seizure", "seizure_prolonged", "motor_weakness", "cerebral_edema"),
        _neuro,
    ),
}


# Field helpers -------------------------------------------------------------------------


def _object(payload: bytes) -> dict[str, Any]:
    data = load_json(payload)
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {type_name(data)}")
    return data


def _only(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise Rejected(f"unknown field {key[:40]!r}")


def _patient_id(value: object) -> str:
    if not isinstance(value, str) or not PATIENT_ID.fullmatch(value):
        raise Rejected("patient_id: expected 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def _optional_number(
    data: dict[str, Any], field: str, low: float, high: float, hint: str = ""
) -> float | None:
    value = data.get(field)
    if value is None:
        return None
    number = check_number(value, field)
    if not low <= number <= high:
        raise Rejected(f"{field}: {fmt(number)} is outside {fmt(low)}-{fmt(high)}{hint}")
    return number


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise Rejected(f"{field}: expected a string, got {type_name(value)}")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise Rejected(f"{field}: longer than {MAX_TEXT} characters")
    if not text.isprintable():
        raise Rejected(f"{field}: contains control characters")
    return text


def _optional_text(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    return None if value is None else (_text(value, field) or None)


def _dose(value: object) -> float:
    dose = check_number(value, "dose")
    if dose < 0:
        raise Rejected("dose: must not be negative")
    return dose


def _drug(value: object, vocabulary: frozenset[str]) -> dict[str, Any]:
    """{"drug": its name in the vocabulary} for a known drug (thresholds.py); for any
    other name {"drug_text": the name as given}, which no grade reads. A look-alike of a
    known name (letters of another alphabet) is refused."""
    text = _text(value, "drug")
    if not text:
        raise Rejected("drug: empty")
    if len(text) > MAX_DRUG_NAME:
        raise Rejected(f"drug: longer than {MAX_DRUG_NAME} characters")
    known = canonical_drug(text, vocabulary)
    if known is not None:
        return {"drug": known}
    imitated = lookalike_of(text)
    if imitated is not None:
        raise Rejected(
            f"drug: {imitated!r} written with letters of another alphabet (a look-alike)"
        )
    return {"drug_text": unicodedata.normalize("NFKC", text)}
