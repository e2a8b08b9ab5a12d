"""FHIR R4 vital-signs Observations, alone or in a Bundle, -> Observations.

Only FHIR JSON is read; FHIR XML is rejected with a reason that says so. What is read:
- `Observation.code`: LOINC codings (codes.LOINC_VITALS) or IEEE 11073 MDC codings
  (system urn:iso:std:iso:11073:10101, codes.MDC_BY_CODE), as personal-health and
  point-of-care gateways send them. A blood-pressure panel (LOINC 85354-9, 55284-4; MDC
  150016, 150020, 150032, 150036) is read from its `component`s. Any other vital's
  components with a code CRSWatch reads are read too: US Core's pulse-oximetry SpO2 carries
  the inhaled oxygen flow (3151-8) and concentration (3150-0) as components, and they reach
  the grading as `o2_flow_lpm` and `fio2`. Codes CRSWatch does not read are ignored,
  unless nothing usable is left.
- the time: `effectiveDateTime`, else `effectiveInstant`, else `effectivePeriod.start`.
  A time without a zone (invalid FHIR, but sent by some gateways) is read in the site's
  zone (`local_tz`, config ingest.local_timezone), else rejected naming that setting.
- the value: `valueQuantity` in a UCUM unit (`code`, else `unit`) that fits the vital;
  [degF] is converted to Cel, FiO2 in % to a fraction. A wrong unit rejects the message.
- `status`: final, amended, corrected and preliminary are used. entered-in-error and
  cancelled Observations are SKIPPED, not rejected: a sender retracting one reading must
  not lose the readings it sends beside it. Any other status rejects the message.
- an Observation (or component) with `dataAbsentReason` and no value is skipped.
- test data: `meta.security` or `meta.tag` HTEST (v3 ActReason "test health data") or a
  test/demo/simulated tag. On the Observation or Bundle sent alone, the message is
  rejected; on one entry of a Bundle, that entry is skipped.
A skipped Observation that carried a value is named in `notes` (published beside the
stored message, never silent). Observations of one message at the same time merge into
one Observation; two different values of one vital at one time reject the message.
`category` and `subject` are not checked: the topic names the bed.
"""

from __future__ import annotations

from collections import Counter
from datetime import tzinfo
from typing import Any

from monitor.clinical.codes import (
    FHIR_NOT_PATIENT_CODES,
    LOINC_BP_PANELS,
    LOINC_SYSTEMS,
    LOINC_VITALS,
    MDC_BY_CODE,
    MDC_SYSTEMS,
)
from monitor.ingest.messages import Observation, Rejected
from monitor.ingest.validate import (
    MAX_OBSERVATIONS,
    ObservationSet,
    check_number,
    convert_unit,
    load_json,
    parse_time,
    payload_bytes,
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
# MDC blood-pressure "compound" codes whose components carry sbp/dbp/map: MDC_PRESS_BLD,
# MDC_PRESS_BLD_NONINV, MDC_PRESS_BLD_ART, MDC_PRESS_BLD_ART_ABP, MDC_PRESS_CUFF.
MDC_BP_PANELS = frozenset({"150016", "150020", "150032", "150036", "150300"})


def decode_fhir(
    payload: bytes,
    now: float,
    max_future_s: float = 300.0,
    max_past_s: float = 14 * 86400.0,
    local_tz: tzinfo | None = None,
    notes: list[str] | None = None,
) -> list[Observation]:
    """A FHIR `Observation` or `Bundle` (JSON) -> Observations, oldest first."""
    if payload_bytes(payload).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise Rejected(
            "payload is XML: CRSWatch reads FHIR JSON only (application/fhir+json); "
            "set the sender or its gateway to send JSON"
        )
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
    flag = _test_flag(data)
    if flag:
        raise Rejected(f"{kind} {flag}: test data, not patient data; not stored")
    merged = ObservationSet()
    unused: Counter[str] = Counter()
    context = _Context((now, max_future_s, max_past_s), local_tz, notes)
    for where, resource in resources:
        _read_observation(resource, where, merged, unused, context)
    if not len(merged):
        raise Rejected("no usable vital signs in message" + _summary(unused))
    return merged.observations()


class _Context:
    __slots__ = ("window", "local_tz", "notes")

    def __init__(
        self, window: tuple[float, float, float], local_tz: tzinfo | None, notes: list | None
    ):
        self.window, self.local_tz, self.notes = window, local_tz, notes

    def note(self, text: str) -> None:
        if self.notes is not None:
            self.notes.append(text)


def _test_flag(resource: dict[str, Any]) -> str:
    """'meta.security HTEST' when the resource is marked as test data, else ''."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return ""
    for key in ("security", "tag"):
        codings = meta.get(key)
        if not isinstance(codings, list):
            continue
        for coding in codings:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code.strip().upper() in FHIR_NOT_PATIENT_CODES:
                return f"meta.{key} {code.strip()[:20]}"
    return ""


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
    ctx: _Context,
) -> None:
    status = resource.get("status")
    has_value = resource.get("valueQuantity") is not None or bool(resource.get("component"))
    if status in SKIPPED_STATUS:
        unused["skipped as entered-in-error or cancelled"] += 1
        if has_value:
            ctx.note(f"{where}: skipped: status {status}")
        return
    if status not in USED_STATUS:
        got = f"{status[:30]!r}" if isinstance(status, str) else type_name(status)
        raise Rejected(f"{where}: status {got} is not one of {', '.join(USED_STATUS)}")
    vitals, panel = _vitals(resource.get("code"), where)
    if not vitals and not panel:
        unused["with codes CRSWatch does not read"] += 1
        return
    if len(vitals) + panel > 1:
        raise Rejected(f"{where}: code names more than one vital ({', '.join(sorted(vitals))})")
    flag = _test_flag(resource)
    if flag:
        unused["flagged as test data"] += 1
        ctx.note(f"{where}: skipped: {flag} (test data, not patient data)")
        return
    ts = _effective(resource, where, ctx)
    used = 0
    if not panel:
        (name,) = vitals
        if not _absent(resource):
            merged.add(ts, name, _quantity(resource, name, where), where)
            used += 1
    components = resource.get("component") or []
    if not isinstance(components, list):
        raise Rejected(f"{where}.component: expected an array, got {type_name(components)}")
    for j, component in enumerate(components):
        cwhere = f"{where}.component[{j}]"
        if not isinstance(component, dict):
            raise Rejected(f"{cwhere}: expected an object, got {type_name(component)}")
        cvitals, _ = _vitals(component.get("code"), cwhere)
        if len(cvitals) > 1:
            raise Rejected(f"{cwhere}: code names more than one vital")
        if not cvitals or _absent(component):
            continue
        (name,) = cvitals
        merged.add(ts, name, _quantity(component, name, cwhere), cwhere)
        used += 1
    if not used:
        unused["without a value"] += 1


def _vitals(code: object, where: str) -> tuple[set[str], bool]:
    """The vitals a CodeableConcept names (LOINC or MDC), and whether it is a BP panel."""
    if not isinstance(code, dict):
        raise Rejected(f"{where}: code: expected a CodeableConcept, got {type_name(code)}")
    codings = code.get("coding") or []
    if not isinstance(codings, list):
        raise Rejected(f"{where}: code.coding: expected an array, got {type_name(codings)}")
    vitals: set[str] = set()
    panel = False
    for coding in codings:
        if not isinstance(coding, dict):
            raise Rejected(f"{where}: code.coding: expected objects, got {type_name(coding)}")
        system, value = coding.get("system"), coding.get("code")
        if not (isinstance(system, str) and isinstance(value, str)):
            continue
        value = value.strip()
        if system in LOINC_SYSTEMS:
            if value in LOINC_VITALS:
                vitals.add(LOINC_VITALS[value])
            panel = panel or value in LOINC_BP_PANELS
        elif system in MDC_SYSTEMS:
            if value in MDC_BY_CODE:
                vitals.add(MDC_BY_CODE[value][0])
            panel = panel or value in MDC_BP_PANELS
    return vitals, panel


def _effective(resource: dict[str, Any], where: str, ctx: _Context) -> float:
    for key in ("effectiveDateTime", "effectiveInstant"):
        value = resource.get(key)
        if value is not None:
            return _time(value, f"{where}: {key}", ctx)
    period = resource.get("effectivePeriod")
    if isinstance(period, dict) and period.get("start") is not None:
        return _time(period["start"], f"{where}: effectivePeriod.start", ctx)
    raise Rejected(
        f"{where}: no time (effectiveDateTime, effectiveInstant or effectivePeriod.start)"
    )


def _time(value: object, field: str, ctx: _Context) -> float:
    if not isinstance(value, str):
        raise Rejected(f"{field}: expected a string, got {type_name(value)}")
    return parse_time(value, *ctx.window, field, local=True, local_tz=ctx.local_tz)


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
