"""Observations -> the payloads bedside devices send: CRSWatch JSON, FHIR R4, HL7 v2.

The inverse of monitor.ingest.decode_json / decode_fhir / decode_hl7, for the simulator and the
tests: decoding what is encoded here gives back the same observations (times to the
millisecond). FHIR and HL7 carry the measured vitals only; `acvpu` is a nurse's
assessment, not a monitor reading, and is left out of them (send it as JSON vitals or a
neuro care event). An observation with nothing left to carry is left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from monitor.clock import iso
from monitor.ingest.messages import Observation

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
VITAL_SIGNS_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ],
    "text": "Vital Signs",
}
PROFILE = "http://hl7.org/fhir/StructureDefinition/"

# vital -> LOINC codings, text, UCUM code, unit text, FHIR profile, factor to the unit sent
FHIR_VITALS: dict[str, tuple[tuple[tuple[str, str], ...], str, str, str, str, float]] = {
    "hr": ((("8867-4", "Heart rate"),), "Heart rate", "/min", "beats/minute", "heartrate", 1),
    "rr": (
        (("9279-1", "Respiratory rate"),),
        "Respiratory rate",
        "/min",
        "breaths/minute",
        "resprate",
        1,
    ),
    "spo2": (
        (
            ("2708-6", "Oxygen saturation in Arterial blood"),
            ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        ),
        "SpO2",
        "%",
        "%",
        "oxygensat",
        1,
    ),
    "temp_c": ((("8310-5", "Body temperature"),), "Temperature", "Cel", "C", "bodytemp", 1),
    "sbp": ((("8480-6", "Systolic blood pressure"),), "Systolic", "mm[Hg]", "mmHg", "bp", 1),
    "dbp": ((("8462-4", "Diastolic blood pressure"),), "Diastolic", "mm[Hg]", "mmHg", "bp", 1),
    "map": ((("8478-0", "Mean blood pressure"),), "Mean BP", "mm[Hg]", "mmHg", "bp", 1),
    "o2_flow_lpm": (
        (("3151-8", "Inhaled oxygen flow rate"),),
        "O2 flow",
        "L/min",
        "L/min",
        "vitalsigns",
        1,
    ),
    "fio2": (
        (("3150-0", "Inhaled oxygen concentration"),),
        "FiO2",
        "%",
        "%",
        "vitalsigns",
        100,
    ),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")

# vital -> OBX-3, OBX-6, factor to the unit sent. MDC codes as a patient monitor sends them;
# inhaled O2 flow has no MDC code in CLINICAL.md and goes as LOINC with a UCUM unit.
HL7_VITALS: dict[str, tuple[str, str, float]] = {
    "hr": ("147842^MDC_ECG_HEART_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC", 1),
    "rr": ("151562^MDC_RESP_RATE^MDC", "264928^MDC_DIM_RESP_PER_MIN^MDC", 1),
    "spo2": ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "262688^MDC_DIM_PERCENT^MDC", 1),
    "temp_c": ("150344^MDC_TEMP^MDC", "268192^MDC_DIM_DEGC^MDC", 1),
    "sbp": ("150301^MDC_PRESS_CUFF_SYS^MDC", "266016^MDC_DIM_MMHG^MDC", 1),
    "dbp": ("150302^MDC_PRESS_CUFF_DIA^MDC", "266016^MDC_DIM_MMHG^MDC", 1),
    "map": ("150303^MDC_PRESS_CUFF_MEAN^MDC", "266016^MDC_DIM_MMHG^MDC", 1),
    "fio2": ("152196^MDC_CONC_AWAY_O2_INSP^MDC", "262688^MDC_DIM_PERCENT^MDC", 100),
    "o2_flow_lpm": ("3151-8^Inhaled oxygen flow rate^LN", "L/min^L/min^UCUM", 1),
}
# IEEE 11073 containment (MDS.VMD.channel.metric) in OBX-4, as PCD-01 senders fill it.
HL7_SUB_ID = {
    "hr": "1.1.1.1",
    "spo2": "1.2.1.1",
    "rr": "1.3.1.1",
    "temp_c": "1.4.1.1",
    "sbp": "1.5.1.1",
    "dbp": "1.5.1.2",
    "map": "1.5.1.3",
    "fio2": "1.6.1.1",
    "o2_flow_lpm": "1.6.1.2",
}


def to_json(obs_list: Iterable[Observation]) -> bytes:
    """A JSON array of `{"ts": ISO 8601 UTC, vital: value...}` (SPEC.md vitals payload)."""
    return orjson.dumps([{"ts": iso(o.ts), **o.values} for o in obs_list])


def to_fhir(
    obs_list: Iterable[Observation], patient_id: str | None = None, bundle: bool = True
) -> bytes:
    """A FHIR R4 collection Bundle of vital-signs Observations (a blood-pressure panel when
    systolic and diastolic go together). `bundle=False`: the single Observation alone
    (ValueError when there is more than one)."""
    observations = list(obs_list)
    resources = [r for o in observations for r in _fhir_observations(o, patient_id)]
    if not bundle:
        if len(resources) != 1:
            raise ValueError(f"bundle=False needs exactly one Observation, not {len(resources)}")
        return orjson.dumps(resources[0])
    stamp = iso(max((o.ts for o in observations), default=0.0))
    entries = [
        {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['id'])}", "resource": r}
        for r in resources
    ]
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(r["id"] for r in resources))),
            "meta": {"lastUpdated": stamp},
            "type": "collection",
            "timestamp": stamp,
            "entry": entries,
        }
    )


def to_hl7(
    obs_list: Iterable[Observation], patient_id: str, ward: str, bed: str, msg_id: str
) -> bytes:
    """An IHE PCD-01 ORU^R01 (HL7 v2.6): MSH, PID, PV1, then one OBR per observation time
    with its OBX (MDC codes and units, OBX-14 with a zone); segments end with CR."""
    groups = [(o.ts, [(k, v) for k, v in o.values.items() if k in HL7_VITALS]) for o in obs_list]
    groups = [(ts, items) for ts, items in groups if items]
    sent = _hl7_ts(max((ts for ts, _ in groups), default=0.0))
    sender = f"CRSWATCH_SIM^{_esc(ward)}-{_esc(bed)}^L"
    segments = [
        f"MSH|^~\\&|{sender}|{_esc(ward)}|CRSWATCH|CRSWATCH|{sent}||ORU^R01^ORU_R01|"
        f"{_esc(msg_id)}|P|2.6|||NE|AL||UNICODE UTF-8|||"
        "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        f"PID|||{_esc(patient_id)}^^^CRSWATCH^MR",
        f"PV1||I|{_esc(ward)}^^{_esc(bed)}",
    ]
    set_id = 0
    for n, (ts, items) in enumerate(groups, start=1):
        when = _hl7_ts(ts)
        order = f"{_esc(msg_id)}-{n}^CRSWATCH_SIM"
        segments.append(f"OBR|{n}|{order}|{order}|182777000^monitoring of patient^SCT|||{when}")
        for vital, value in items:
            set_id += 1
            code, unit, factor = HL7_VITALS[vital]
            number = _number(float(value) * factor)
            segments.append(
                f"OBX|{set_id}|NM|{code}|{HL7_SUB_ID[vital]}|{number}|{unit}|||||R|||{when}"
            )
    return ("\r".join(segments) + "\r").encode("utf-8")


# FHIR helpers --------------------------------------------------------------------------


def _fhir_observations(obs: Observation, patient_id: str | None) -> list[dict]:
    values = {k: v for k, v in obs.values.items() if k in FHIR_VITALS}
    out = []
    if "sbp" in values and "dbp" in values:
        components = [
            {"code": _code(FHIR_VITALS[k]), "valueQuantity": _quantity(k, values.pop(k))}
            for k in ("sbp", "dbp", "map")
            if k in values
        ]
        panel = _resource(obs.ts, "bp", "bp", patient_id, ((BP_PANEL,), "Blood pressure"))
        panel["component"] = components
        out.append(panel)
    for vital, value in values.items():
        spec = FHIR_VITALS[vital]
        resource = _resource(obs.ts, vital, spec[4], patient_id, spec)
        resource["valueQuantity"] = _quantity(vital, value)
        out.append(resource)
    return out


def _resource(ts: float, key: str, profile: str, patient_id: str | None, spec: tuple) -> dict:
    resource = {
        "resourceType": "Observation",
        "id": f"crs-{key.replace('_', '-')}-{round(ts * 1000)}",
        "meta": {"profile": [PROFILE + profile]},
        "status": "final",
        "category": [VITAL_SIGNS_CATEGORY],
        "code": _code(spec),
    }
    if patient_id is not None:
        resource["subject"] = {"reference": f"Patient/{patient_id}"}
    resource["effectiveDateTime"] = iso(ts)
    return resource


def _code(spec: tuple) -> dict:
    codings, text = spec[0], spec[1]
    return {
        "coding": [{"system": LOINC, "code": c, "display": d} for c, d in codings],
        "text": text,
    }


def _quantity(vital: str, value: float | str) -> dict:
    _, _, ucum, unit, _, factor = FHIR_VITALS[vital]
    number = round(float(value) * factor, 6)
    return {"value": number, "unit": unit, "system": UCUM, "code": ucum}


# HL7 helpers ---------------------------------------------------------------------------


def _hl7_ts(ts: float) -> str:
    """Epoch seconds -> YYYYMMDDHHMMSS[.fff]+0000."""
    seconds, millis = divmod(round(ts * 1000), 1000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d%H%M%S")
    return text + (f".{millis:03d}" if millis else "") + "+0000"


def _number(value: float) -> str:
    """An HL7 NM: plain decimal, no exponent."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _esc(text: str) -> str:
    """HL7 escape sequences for the separators in free text."""
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )
