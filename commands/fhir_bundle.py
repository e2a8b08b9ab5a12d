"""`export --format fhir`: a patient's stored history -> one FHIR R4 transaction Bundle.

A hospital loads it into its FHIR server by POSTing it to the server's base. Every entry
is a conditional create (`ifNoneExist` on an identifier in the CRSWatch systems below), so
loading the same export twice creates nothing twice, and the Patient is matched on the
CRSWatch patient id rather than created again when the server already has it.

- vital signs: Observation (category vital-signs), LOINC codes and UCUM units
  (codes.LOINC_OUT); blood pressure as the 85354-9 panel with its components; SpO2
  carries the inhaled oxygen flow and FiO2 as components (as US Core pulse oximetry) when
  they were measured with it; ACVPU (category exam) in the CRSWatch code system.
- grades: Observation (category survey) coded in the CRSWatch code system (CODES): the
  ASTCT CRS and ICANS grades and the NEWS2 total, one per change; an undecided grade has
  no value, a dataAbsentReason and its lower bound as a component; the reasons in `note`.
- alerts: Flag (active while raised or acknowledged, inactive once resolved).
- care events: medications and vasopressors as MedicationAdministration, oxygen as
  Procedure (SNOMED CT 57485005 oxygen therapy), the ICE score as an Observation.
"""

from __future__ import annotations

import uuid
from typing import Any

from monitor.clinical.codes import LOINC_OUT, LOINC_SYSTEM, UCUM_SYSTEM
from monitor.clinical.thresholds import DEVICE_NAME
from monitor.clock import iso

CODES = "urn:crswatch:fhir:codes"  # CRSWatch's own code system (docs/protocol.md)
IDS = "urn:crswatch:fhir:id"  # identifiers of what CRSWatch stored
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
SNOMED = "http://snomed.info/sct"
GRADE_CODES = {
    "crs": ("crs-grade", "CRS grade (ASTCT 2019 consensus)"),
    "icans": ("icans-grade", "ICANS grade (ASTCT 2019 consensus)"),
    "news2": ("news2-total", "NEWS2 total score (RCP 2017)"),
}
_NS = uuid.UUID("6f1c3c1e-61a4-4b8e-9f33-2a1b0d3c9e71")  # fixed: the same data, the same ids


def bundle(history: dict[str, Any], now: float) -> dict[str, Any]:
    """patient_history() (monitor/store/reads.py) -> a FHIR R4 transaction Bundle."""
    pid = history["patient_id"]
    entries = [_entry("Patient", f"patient/{pid}", _patient(pid))]
    patient = {"reference": entries[0]["fullUrl"]}
    for obs in history["observations"]:
        for key, resource in _vitals(obs):
            entries.append(_entry("Observation", f"{pid}/{key}", resource, patient))
    previous: dict[str, tuple] = {}
    for row in history["grades"]:
        for key, resource in _grades(row, previous):
            entries.append(_entry("Observation", f"{pid}/{key}", resource, patient))
    for key, kind, resource in _care(history["care"]):
        entries.append(_entry(kind, f"{pid}/{key}", resource, patient))
    for alert in history["alerts"]:
        entries.append(_entry("Flag", f"alert/{alert['id']}", _flag(alert), patient))
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": iso(now),
        "entry": entries,
    }


def _entry(kind: str, key: str, resource: dict, patient: dict | None = None) -> dict:
    """A conditional create of `resource`, identified by `key` in the CRSWatch systems."""
    resource = {"resourceType": kind, "identifier": [{"system": IDS, "value": key}], **resource}
    if patient is not None:
        resource["subject"] = patient
    if kind == "Patient":
        resource["identifier"] = [{"system": "urn:crswatch:patient", "value": key[8:]}]
    ident = resource["identifier"][0]
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(_NS, kind + '/' + key)}",
        "resource": resource,
        "request": {
            "method": "POST",
            "url": kind,
            "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
        },
    }


def _patient(pid: str) -> dict:
    return {"active": True}


def _category(code: str) -> list[dict]:
    return [{"coding": [{"system": CATEGORY, "code": code}]}]


def _loinc(vital: str) -> dict:
    code, display, _ = LOINC_OUT[vital]
    return {"coding": [{"system": LOINC_SYSTEM, "code": code, "display": display}]}


def _quantity(vital: str, value: float) -> dict:
    unit = LOINC_OUT[vital][2]
    if vital == "fio2":
        value = round(value * 100, 4)  # stored as a fraction; LOINC 3150-0 is in %
    return {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": unit}


def _component(vital: str, value: float) -> dict:
    return {"code": _loinc(vital), "valueQuantity": _quantity(vital, value)}


def _vitals(obs: dict) -> list[tuple[str, dict]]:
    """One stored time point -> its Observations (key, resource)."""
    ts = iso(obs["ts"])
    base = {"status": "final", "category": _category("vital-signs"), "effectiveDateTime": ts}
    out = []
    for vital in ("hr", "rr", "temp_c"):
        if obs.get(vital) is not None:
            out.append(
                (
                    f"{obs['ts']}/{vital}",
                    {**base, "code": _loinc(vital), "valueQuantity": _quantity(vital, obs[vital])},
                )
            )
    oxygen = [_component(v, obs[v]) for v in ("o2_flow_lpm", "fio2") if obs.get(v) is not None]
    if obs.get("spo2") is not None:
        spo2 = {**base, "code": _loinc("spo2"), "valueQuantity": _quantity("spo2", obs["spo2"])}
        if oxygen:
            spo2["component"] = oxygen
        out.append((f"{obs['ts']}/spo2", spo2))
    else:
        for vital in ("o2_flow_lpm", "fio2"):
            if obs.get(vital) is not None:
                resource = {
                    **base,
                    "code": _loinc(vital),
                    "valueQuantity": _quantity(vital, obs[vital]),
                }
                out.append((f"{obs['ts']}/{vital}", resource))
    pressures = [_component(v, obs[v]) for v in ("sbp", "dbp", "map") if obs.get(v) is not None]
    if pressures:
        panel = {
            "coding": [
                {
                    "system": LOINC_SYSTEM,
                    "code": "85354-9",
                    "display": "Blood pressure panel with all children optional",
                }
            ]
        }
        out.append((f"{obs['ts']}/bp", {**base, "code": panel, "component": pressures}))
    if obs.get("acvpu") is not None:
        acvpu = {"coding": [{"system": CODES, "code": "acvpu", "display": "ACVPU"}]}
        value = {
            "coding": [{"system": CODES, "code": f"acvpu-{obs['acvpu']}"}],
            "text": obs["acvpu"],
        }
        out.append(
            (
                f"{obs['ts']}/acvpu",
                {
                    **base,
                    "category": _category("exam"),
                    "code": acvpu,
                    "valueCodeableConcept": value,
                },
            )
        )
    return out


def _grades(row: dict, previous: dict[str, tuple]) -> list[tuple[str, dict]]:
    """A row of the grade timeline -> an Observation per scale that changed."""
    out = []
    for scale, value, at_least in (
        ("crs", row["crs_grade"], row["crs_at_least"]),
        ("icans", row["icans_grade"], row["icans_at_least"]),
        ("news2", row["news2_total"], None),
    ):
        if previous.get(scale) == (value, at_least):
            continue
        previous[scale] = (value, at_least)
        code, display = GRADE_CODES[scale]
        resource: dict[str, Any] = {
            "status": "preliminary" if row.get("late") else "final",
            "category": _category("survey"),
            "code": {"coding": [{"system": CODES, "code": code, "display": display}]},
            "effectiveDateTime": iso(row["ts"]),
        }
        if value is not None:
            resource["valueInteger"] = int(value)
        else:
            resource["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "unknown"}]}
            if at_least is not None:
                resource["component"] = [
                    {
                        "code": {"coding": [{"system": CODES, "code": f"{code}-at-least"}]},
                        "valueInteger": int(at_least),
                    }
                ]
        reasons = [r for r in row.get("reasons") or [] if isinstance(r, str)]
        if reasons:
            resource["note"] = [{"text": "; ".join(reasons)}]
        out.append((f"{row['ts']}/{code}", resource))
    return out


def _care(care: list[dict]) -> list[tuple[str, str, dict]]:
    """Care events -> (key, resource type, resource)."""
    out: list[tuple[str, str, dict]] = []
    running: dict[str, dict] = {}  # vasopressor -> its open MedicationAdministration
    for ev in care:
        ts, kind = iso(ev["ts"]), ev["type"]
        key = f"{ev['ts']}/{kind}"
        if kind == "medication":
            out.append((key, "MedicationAdministration", _medication(ev["drug"], ts)))
        elif kind == "vasopressor":
            drug = str(ev.get("drug"))
            if ev.get("action") == "start" and drug not in running:
                resource = _medication(drug, None)
                resource["status"] = "in-progress"
                resource["effectivePeriod"] = {"start": ts}
                if ev.get("dose") is not None:
                    resource["dosage"] = {"text": f"{ev['dose']} (as entered)"}
                running[drug] = resource
                out.append((key, "MedicationAdministration", resource))
            elif ev.get("action") == "stop" and drug in running:
                stopped = running.pop(drug)
                stopped["status"] = "completed"
                stopped["effectivePeriod"]["end"] = ts
        elif kind == "oxygen":
            device = DEVICE_NAME.get(str(ev.get("device")), str(ev.get("device")))
            text = device + (f", {ev['flow_lpm']} L/min" if ev.get("flow_lpm") else "")
            text += f", FiO2 {ev['fio2']}" if ev.get("fio2") else ""
            out.append(
                (
                    key,
                    "Procedure",
                    {
                        "status": "completed" if ev.get("device") == "room_air" else "in-progress",
                        "code": {
                            "coding": [
                                {"system": SNOMED, "code": "57485005", "display": "Oxygen therapy"}
                            ],
                            "text": f"oxygen: {text}",
                        },
                        "performedDateTime": ts,
                    },
                )
            )
        elif kind == "neuro" and ev.get("ice_score") is not None:
            out.append(
                (
                    key,
                    "Observation",
                    {
                        "status": "final",
                        "category": _category("survey"),
                        "code": {
                            "coding": [
                                {"system": CODES, "code": "ice-score", "display": "ICE score"}
                            ]
                        },
                        "effectiveDateTime": ts,
                        "valueInteger": int(ev["ice_score"]),
                    },
                )
            )
    return out


def _medication(drug: str, ts: str | None) -> dict:
    resource: dict[str, Any] = {
        "status": "completed",
        "medicationCodeableConcept": {"text": drug},
    }
    if ts is not None:
        resource["effectiveDateTime"] = ts
    return resource


def _flag(alert: dict) -> dict:
    record = alert.get("record") or {}
    message = record.get("message") or alert["kind"]
    period = {"start": iso(alert["raised_ts"])}
    if alert["state"] == "resolved":
        period["end"] = iso(alert["updated_ts"])
    return {
        "status": "inactive" if alert["state"] == "resolved" else "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": CODES, "code": f"alert-{alert['kind']}"}],
            "text": f"tier {alert['tier']}: {message}",
        },
        "period": period,
    }
