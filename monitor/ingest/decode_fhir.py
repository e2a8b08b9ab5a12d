"""FHIR R4 vital-signs Observations, alone or in a Bundle, -> Observations.

What is read:
- `Observation.code`: LOINC codings (LOINC_VITALS in validate.py); a blood-pressure panel
  (85354-9, 55284-4) is read from its `component`s. Codes CRSWatch does not read are
  ignored, unless nothing usable is left.
- the time: `effectiveDateTime`, else `effectiveInstant`, else `effectivePeriod.start`;
  it must carry a zone.
- the value: `valueQuantity` in a UCUM unit (`code`, else `unit`) that fits the vital;
  [degF] is converted to Cel, FiO2 in % to a fraction. A wrong unit rejects the message.
- `status`: final, amended, corrected and preliminary are used. entered-in-error and
  cancelled Observations are SKIPPED, not rejected: a sender retracting one reading must
  not lose the readings it sends beside it. Any other status rejects the message.
- an Observation (or component) with `dataAbsentReason` and no value is skipped.

Observations of one message at the same time merge into one Observation; two different
values of one vital at one time reject the message. `category` and `subject` are not
checked: the topic names the bed, and a known LOINC vital code is enough.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from monitor.ingest.messages import Observation, Rejected
from monitor.ingest.validate import (
    LOINC_BP_PANELS,
    LOINC_SYSTEMS,
    LOINC_VITALS,
    MAX_OBSERVATIONS,
    ObservationSet,
    check_number,
    convert_unit,
    load_json,
    parse_time,
    type_name,
)

USED_STATUS = ("final", "amended", "corrected", "preliminary")
SKIPPED_STATUS = ("entered-in-error", "cancelled")
BUNDLE_TYPES = (
    "collection",
    "transaction",
    "batch",
    "message",
    "searchset",
    "history",
    "document",
)
MAX_BUNDLE_ENTRIES = 2 * MAX_OBSERVATIONS  # room for MessageHeader, Patient, Device...


def decode_fhir(
    payload: bytes,
    now: float,
    max_future_s: float = 300.0,
    max_past_s: float = 14 * 86400.0,
) -> list[Observation]:
    """A FHIR `Observation` or `Bundle` (JSON) -> Observations, oldest first."""
    data = load_json(payload)
    if not isinstance(data, dict):
        raise Rejected(f"expected a FHIR resource (a JSON object), got {type_name(data)}")
    kind = data.get("resourceType")
    if kind == "Observation":
        resources = [("Observation", data)]
    elif kind == "Bundle":
        resources = _bundle_observations(data)
    else:
        got = f"{kind[:40]!r}" if isinstance(kind, str) else type_name(kind)
        raise Rejected(f"resourceType: expected Observation or Bundle, got {got}")
    merged = ObservationSet()
    unused: Counter[str] = Counter()
    for where, resource in resources:
        _read_observation(resource, where, merged, unused, (now, max_future_s, max_past_s))
    if not len(merged):
        raise Rejected("no usable vital signs in message" + _summary(unused))
    return merged.observations()


def _bundle_observations(bundle: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, resource) of each Observation entry; other resources are ignored."""
    kind = bundle.get("type")
    if kind not in BUNDLE_TYPES:
        got = f"{kind[:40]!r}" if isinstance(kind, str) else type_name(kind)
        raise Rejected(f"Bundle.type: expected one of {', '.join(BUNDLE_TYPES)}, got {got}")
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise Rejected(f"Bundle.entry: expected an array, got {type_name(entries)}")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise Rejected(f"Bundle of {len(entries)} entries (limit {MAX_BUNDLE_ENTRIES})")
    found = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise Rejected(f"entry[{i}]: expected an object, got {type_name(entry)}")
        resource = entry.get("resource")
        if resource is None:  # e.g. a DELETE in a transaction
            continue
        if not isinstance(resource, dict):
            raise Rejected(f"entry[{i}].resource: expected an object, got {type_name(resource)}")
        if resource.get("resourceType") == "Observation":
            found.append((f"entry[{i}]", resource))
    if len(found) > MAX_OBSERVATIONS:
        raise Rejected(f"Bundle of {len(found)} Observations (limit {MAX_OBSERVATIONS})")
    return found


def _read_observation(
    resource: dict[str, Any],
    where: str,
    merged: ObservationSet,
    unused: Counter[str],
    window: tuple[float, float, float],
) -> None:
    status = resource.get("status")
    if status in SKIPPED_STATUS:
        unused["skipped as entered-in-error or cancelled"] += 1
        return
    if status not in USED_STATUS:
        got = f"{status[:30]!r}" if isinstance(status, str) else type_name(status)
        raise Rejected(f"{where}: status {got} is not one of {', '.join(USED_STATUS)}")
    codes = _loinc_codes(resource.get("code"), where)
    vitals = {LOINC_VITALS[c] for c in codes if c in LOINC_VITALS}
    panel = bool(codes & LOINC_BP_PANELS)
    if not vitals and not panel:
        unused["with codes CRSWatch does not read"] += 1
        return
    if len(vitals) + panel > 1:
        raise Rejected(f"{where}: code names more than one vital ({', '.join(sorted(codes))})")
    ts = _effective(resource, where, *window)
    if not panel:
        (name,) = vitals
        if _absent(resource):
            unused["without a value"] += 1
            return
        merged.add(ts, name, _quantity(resource, name, where), where)
        return
    components = resource.get("component") or []
    if not isinstance(components, list):
        raise Rejected(f"{where}.component: expected an array, got {type_name(components)}")
    used = 0
    for j, component in enumerate(components):
        cwhere = f"{where}.component[{j}]"
        if not isinstance(component, dict):
            raise Rejected(f"{cwhere}: expected an object, got {type_name(component)}")
        ccodes = _loinc_codes(component.get("code"), cwhere)
        cvitals = {LOINC_VITALS[c] for c in ccodes if c in LOINC_VITALS}
        if len(cvitals) > 1:
            raise Rejected(f"{cwhere}: code names more than one vital")
        if not cvitals or _absent(component):
            continue
        (name,) = cvitals
        merged.add(ts, name, _quantity(component, name, cwhere), cwhere)
        used += 1
    if not used:
        unused["without a value"] += 1


def _loinc_codes(code: object, where: str) -> set[str]:
    """The LOINC codes of a CodeableConcept."""
    if not isinstance(code, dict):
        raise Rejected(f"{where}: code: expected a CodeableConcept, got {type_name(code)}")
    codings = code.get("coding") or []
    if not isinstance(codings, list):
        raise Rejected(f"{where}: code.coding: expected an array, got {type_name(codings)}")
    found = set()
    for coding in codings:
        if not isinstance(coding, dict):
            raise Rejected(f"{where}: code.coding: expected objects, got {type_name(coding)}")
        system, value = coding.get("system"), coding.get("code")
        if isinstance(system, str) and system in LOINC_SYSTEMS and isinstance(value, str):
            found.add(value.strip())
    return found


def _effective(
    resource: dict[str, Any], where: str, now: float, max_future_s: float, max_past_s: float
) -> float:
    for key in ("effectiveDateTime", "effectiveInstant"):
        value = resource.get(key)
        if value is not None:
            return _time(value, f"{where}: {key}", now, max_future_s, max_past_s)
    period = resource.get("effectivePeriod")
    if isinstance(period, dict) and period.get("start") is not None:
        return _time(
            period["start"], f"{where}: effectivePeriod.start", now, max_future_s, max_past_s
        )
    raise Rejected(
        f"{where}: no time (effectiveDateTime, effectiveInstant or effectivePeriod.start)"
    )


def _time(value: object, field: str, now: float, max_future_s: float, max_past_s: float) -> float:
    if not isinstance(value, str):
        raise Rejected(f"{field}: expected a string, got {type_name(value)}")
    return parse_time(value, now, max_future_s, max_past_s, field)


def _absent(holder: dict[str, Any]) -> bool:
    """No value, and the sender says why (FHIR dataAbsentReason)."""
    return holder.get("valueQuantity") is None and holder.get("dataAbsentReason") is not None


def _quantity(holder: dict[str, Any], name: str, where: str) -> float:
    quantity = holder.get("valueQuantity")
    if quantity is None:
        other = next((k for k in holder if k.startswith("value")), None)
        if other is not None:
            raise Rejected(f"{where}: {name} must be a valueQuantity, not {other[:30]}")
        raise Rejected(f"{where}: no valueQuantity for {name}")
    if not isinstance(quantity, dict):
        raise Rejected(f"{where}: valueQuantity: expected an object, got {type_name(quantity)}")
    if quantity.get("comparator") is not None:
        raise Rejected(f"{where}: valueQuantity.comparator: a bound is not a measurement")
    value = check_number(quantity.get("value"), f"{where}: valueQuantity.value")
    unit = quantity.get("code")
    if not (isinstance(unit, str) and unit.strip()):
        unit = quantity.get("unit")
    if not isinstance(unit, str):
        unit = None
    return convert_unit(name, value, unit, where)


def _summary(unused: Counter[str]) -> str:
    if not unused:
        return ""
    return " (" + ", ".join(f"{n} {why}" for why, n in unused.items()) + ")"
