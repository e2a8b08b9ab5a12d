"""FHIR R4 vital-signs Observations and Bundles."""

# ruff: noqa: E501  (the literal Bundle keeps the long lines a gateway sends)

from __future__ import annotations

import copy
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decode_json import JSON_VALUES, at

from monitor.ingest.decode_fhir import decode_fhir
from monitor.ingest.messages import Observation, Rejected
from tests.support.fuzz import NOW, fuzz_fhir, json_paths, replace_at

# As an EHR integration engine forwards a nurse's vital-signs set: a collection Bundle
# with the Patient, a BP panel, a temperature in degF, a retracted reading and a weight.
BUNDLE = r"""{
  "resourceType": "Bundle",
  "id": "b7e1c2d4-5f60-4a8b-9c0d-1e2f3a4b5c6d",
  "meta": {"lastUpdated": "2026-11-25T12:58:30+01:00"},
  "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0f3c9a7e-7d1b-4c55-a2a4-5b8f1c0e9d21"},
  "type": "collection",
  "timestamp": "2026-11-25T12:58:30+01:00",
  "entry": [
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000001",
      "resource": {
        "resourceType": "Patient",
        "id": "mrn-0042",
        "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "MRN0042"}],
        "name": [{"family": "Doe", "given": ["Jane"]}]
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000002",
      "resource": {
        "resourceType": "Observation",
        "id": "hr-1",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Heart rate"},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T12:58:00+01:00",
        "performer": [{"reference": "Practitioner/rn-17"}],
        "valueQuantity": {"value": 112, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000003",
      "resource": {
        "resourceType": "Observation",
        "id": "bp-1",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bp"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel with all children optional"}], "text": "Blood pressure"},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T11:58:00Z",
        "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]},
        "component": [
          {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
            "valueQuantity": {"value": 96, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
          },
          {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
            "valueQuantity": {"value": 58, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
          },
          {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8478-0", "display": "Mean blood pressure"}]},
            "valueQuantity": {"value": 70, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
          }
        ]
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000004",
      "resource": {
        "resourceType": "Observation",
        "id": "temp-1",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bodytemp"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}, {"system": "http://snomed.info/sct", "code": "386725007"}]},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T06:58:00-05:00",
        "valueQuantity": {"value": 101.3, "unit": "degF", "system": "http://unitsofmeasure.org", "code": "[degF]"}
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000005",
      "resource": {
        "resourceType": "Observation",
        "id": "spo2-1",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/oxygensat"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [
          {"system": "http://loinc.org", "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
          {"system": "http://loinc.org", "code": "59408-5", "display": "Oxygen saturation in Arterial blood by Pulse oximetry"}
        ]},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T11:58:00.000Z",
        "valueQuantity": {"value": 93, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000006",
      "resource": {
        "resourceType": "Observation",
        "id": "o2-1",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "3151-8", "display": "Inhaled oxygen flow rate"}]},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T11:58:00Z",
        "valueQuantity": {"value": 3, "unit": "L/min", "system": "http://unitsofmeasure.org", "code": "L/min"}
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000007",
      "resource": {
        "resourceType": "Observation",
        "id": "rr-0",
        "status": "amended",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "9279-1", "display": "Respiratory rate"}]},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T11:43:00Z",
        "valueQuantity": {"value": 20, "unit": "breaths/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000008",
      "resource": {
        "resourceType": "Observation",
        "id": "hr-0",
        "status": "entered-in-error",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T11:58:00Z",
        "valueQuantity": {"value": 250, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
      }
    },
    {
      "fullUrl": "urn:uuid:6c1e3b2a-0000-4000-8000-000000000009",
      "resource": {
        "resourceType": "Observation",
        "id": "weight-1",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": "Patient/mrn-0042"},
        "effectiveDateTime": "2026-11-25T11:58:00Z",
        "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
      }
    }
  ]
}"""


def test_real_bundle():
    assert decode_fhir(BUNDLE.encode(), NOW) == [
        Observation(at("2026-11-25T11:43:00Z"), {"rr": 20.0}),
        Observation(
            at("2026-11-25T11:58:00Z"),
            {
                "hr": 112.0,
                "sbp": 96.0,
                "dbp": 58.0,
                "map": 70.0,
                "temp_c": 38.5,
                "spo2": 93.0,
                "o2_flow_lpm": 3.0,
            },
        ),
    ]


def bundle() -> dict:
    return json.loads(BUNDLE)


def observation(**changes) -> dict:
    """The heart-rate Observation of BUNDLE, changed."""
    resource = copy.deepcopy(bundle()["entry"][1]["resource"])
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def quantity(value, code="/min", unit=None) -> dict:
    q = {"value": value, "system": "http://unitsofmeasure.org", "code": code}
    if unit is not None:
        q["unit"] = unit
    return q


def loinc(code: str) -> dict:
    return {"coding": [{"system": "http://loinc.org", "code": code}]}


def decode(resource: dict) -> list[Observation]:
    return decode_fhir(orjson.dumps(resource), NOW)


def reason(resource: object, raw: bytes | None = None) -> str:
    with pytest.raises(Rejected) as info:
        decode_fhir(raw if raw is not None else orjson.dumps(resource), NOW)
    return info.value.reason


HR_TS = at("2026-11-25T11:58:00Z")


def test_single_observation():
    assert decode(observation()) == [Observation(HR_TS, {"hr": 112.0})]


@pytest.mark.parametrize(
    "time",
    [
        {"effectiveInstant": "2026-11-25T11:58:00.000+00:00"},
        {"effectivePeriod": {"start": "2026-11-25T11:58:00Z", "end": "2026-11-25T11:59:00Z"}},
    ],
)
def test_other_effective_times(time):
    resource = observation(effectiveDateTime=None, **time)
    assert decode(resource) == [Observation(HR_TS, {"hr": 112.0})]


@pytest.mark.parametrize(
    ("code", "q", "expected"),
    [
        ("3150-0", quantity(40, "%"), {"fio2": 0.4}),
        ("3150-0", quantity(0.4, "1"), {"fio2": 0.4}),
        ("3150-0", quantity(0.35, "{ratio}"), {"fio2": 0.35}),
        ("8480-6", {"value": 120, "unit": "mmHg"}, {"sbp": 120.0}),
        ("8331-1", quantity(37.2, "Cel"), {"temp_c": 37.2}),
        ("8332-9", quantity(98.6, "[degF]"), {"temp_c": 37.0}),
        ("8867-4", quantity(80, "{beats}/min"), {"hr": 80.0}),
        ("9279-1", quantity(18, "{breaths}/min"), {"rr": 18.0}),
    ],
)
def test_codes_and_units(code, q, expected):
    assert decode(observation(code=loinc(code), valueQuantity=q)) == [Observation(HR_TS, expected)]


def test_loinc_oid_system_is_loinc():
    code = {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "8867-4"}]}
    assert decode(observation(code=code)) == [Observation(HR_TS, {"hr": 112.0})]


def test_data_absent_is_skipped_when_something_else_is_usable():
    doc = bundle()
    absent = doc["entry"][1]["resource"]
    del absent["valueQuantity"]
    absent["dataAbsentReason"] = {"coding": [{"code": "error"}]}
    doc["entry"][2]["resource"]["component"][2] = {
        "code": loinc("8478-0"),
        "dataAbsentReason": {"text": "not measured"},
    }
    values = decode(doc)[1].values
    assert "hr" not in values and "map" not in values and values["sbp"] == 96.0


def test_same_value_twice_merges():
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": observation()}] * 2}
    assert decode(doc) == [Observation(HR_TS, {"hr": 112.0})]


def test_entries_without_resource_and_other_resources_are_ignored():
    doc = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Observation/old"}},
            {"resource": {"resourceType": "Device", "id": "monitor-3"}},
            {"resource": observation(), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    assert decode(doc) == [Observation(HR_TS, {"hr": 112.0})]


def _entries(n: int) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation()}] * n,
    }


FHIR_REJECTED = [
    (None, b"<Observation/>", "payload is XML: CRSWatch reads FHIR JSON only"),
    ([], None, "expected a FHIR resource (a JSON object), got an array"),
    (
        {"resourceType": "Patient"},
        None,
        "resourceType: expected Observation or Bundle, got 'Patient'",
    ),
    ({"status": "final"}, None, "resourceType: expected Observation or Bundle, got null"),
    ({"resourceType": "Bundle", "type": "foo"}, None, "Bundle.type: expected one of collection"),
    ({"resourceType": "Bundle"}, None, "Bundle.type: expected one of collection"),
    (
        {"resourceType": "Bundle", "type": "batch", "entry": {}},
        None,
        "Bundle.entry: expected an array",
    ),
    (
        {"resourceType": "Bundle", "type": "batch", "entry": [3]},
        None,
        "entry[0]: expected an object",
    ),
    (
        {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": 3}]},
        None,
        "entry[0].resource",
    ),
    ({"resourceType": "Bundle", "type": "batch"}, None, "no usable vital signs in message"),
    (_entries(1001), None, "Bundle of 1001 Observations (limit 1000)"),
    (_entries(2001), None, "Bundle of 2001 entries (limit 2000)"),
    (
        observation(status="registered"),
        None,
        "Observation: status 'registered' is not one of final",
    ),
    (observation(status=None), None, "Observation: status null is not one of final"),
    (
        observation(status="entered-in-error"),
        None,
        "no usable vital signs in message (1 skipped as entered-in-error or cancelled)",
    ),
    (
        observation(code=loinc("29463-7")),
        None,
        "no usable vital signs in message (1 with codes CRSWatch does not read)",
    ),
    (observation(code=None), None, "Observation: code: expected a CodeableConcept, got null"),
    (observation(code={"coding": "8867-4"}), None, "code.coding: expected an array"),
    (
        observation(
            code={
                "coding": [
                    {"system": "http://loinc.org", "code": "8867-4"},
                    {"system": "http://loinc.org", "code": "9279-1"},
                ]
            }
        ),
        None,
        "Observation: code names more than one vital",
    ),
    (
        observation(valueQuantity=quantity(112, "mm[Hg]")),
        None,
        "Observation: unit 'mm[Hg]' is wrong for hr (expected /min, {beats}/min)",
    ),
    (
        observation(code=loinc("8310-5"), valueQuantity=quantity(310, "K")),
        None,
        "unit 'K' is wrong for temp_c (expected Cel, [degF])",
    ),
    (observation(valueQuantity={"value": 112}), None, "Observation: no unit for hr"),
    (
        observation(valueQuantity=quantity("112")),
        None,
        "valueQuantity.value: expected a number, got a string",
    ),
    (
        observation(valueQuantity=quantity(True)),
        None,
        "valueQuantity.value: expected a number, got a boolean",
    ),
    (observation(valueQuantity=[112]), None, "valueQuantity: expected an object"),
    (
        observation(valueQuantity={**quantity(100), "comparator": ">"}),
        None,
        "comparator: a bound is not a measurement",
    ),
    (
        observation(valueQuantity=None, valueString="112"),
        None,
        "hr must be a valueQuantity, not valueString",
    ),
    (observation(valueQuantity=None), None, "Observation: no valueQuantity for hr"),
    (
        observation(valueQuantity=quantity(900)),
        None,
        "Observation: hr: 900 /min is outside the possible range 0-300",
    ),
    (
        observation(code=loinc("59408-5"), valueQuantity=quantity(120, "%")),
        None,
        "Observation: spo2: 120 % is outside the possible range 0-100",
    ),
    (
        observation(code=loinc("3150-0"), valueQuantity=quantity(15, "%")),
        None,
        "fio2: 0.15 is outside the possible range 0.21-1",
    ),
    (
        observation(effectiveDateTime="2026-11-25T11:58:00"),
        None,
        "Observation: effectiveDateTime: ISO 8601 time without a zone",
    ),
    (
        observation(effectiveDateTime="2026-11-25"),
        None,
        "effectiveDateTime: ISO 8601 time without a zone",
    ),
    (
        observation(effectiveDateTime=1795607880),
        None,
        "effectiveDateTime: expected a string, got a number",
    ),
    (observation(effectiveDateTime=None), None, "Observation: no time (effectiveDateTime"),
    (
        observation(effectiveDateTime="2026-11-25T13:00:00Z"),
        None,
        "effectiveDateTime: 2026-11-25T13:00:00.000Z is 3600 s in the future (limit 300 s)",
    ),
    (
        observation(effectiveDateTime="2026-11-01T12:00:00Z"),
        None,
        "effectiveDateTime: 2026-11-01T12:00:00.000Z is 2073600 s in the past (limit 1209600 s)",
    ),
    (
        observation(effectivePeriod={"start": "2026-11-25T11:58"}, effectiveDateTime=None),
        None,
        "effectivePeriod.start: ISO 8601 time without a zone",
    ),
]


@pytest.mark.parametrize(("resource", "raw", "expected"), FHIR_REJECTED)
def test_rejected(resource, raw, expected):
    assert expected in reason(resource, raw)


def test_conflicting_values_reject_the_bundle():
    doc = bundle()
    doc["entry"].append({"resource": observation(valueQuantity=quantity(113))})
    assert reason(doc) == "entry[9]: hr conflicts with entry[1] at 2026-11-25T11:58:00.000Z"


def test_one_bad_observation_rejects_the_bundle_and_names_it():
    doc = bundle()
    doc["entry"][4]["resource"]["valueQuantity"]["code"] = "Cel"
    assert reason(doc).startswith("entry[4]: unit 'Cel' is wrong for spo2")
    doc = bundle()
    doc["entry"][2]["resource"]["component"][1]["valueQuantity"]["value"] = 400
    assert reason(doc) == (
        "entry[2].component[1]: dbp: 400 mmHg is outside the possible range 0-250"
    )


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data):
    fuzz_fhir(data)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_fuzz_json_of_wrong_shapes(value):
    fuzz_fhir(json.dumps(value).encode())
    fuzz_fhir(json.dumps({"resourceType": "Observation", "status": "final", "x": value}).encode())


@settings(max_examples=300)
@given(st.data())
def test_fuzz_mutated_bundle(data):
    doc = bundle()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(json_paths(doc)))
        doc = replace_at(doc, path, data.draw(JSON_VALUES))
    fuzz_fhir(json.dumps(doc).encode())
