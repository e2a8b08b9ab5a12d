"""devices.encode: real-shaped payloads, and decode(encode(x)) == x for every format."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decode_fhir import BUNDLE
from test_decode_hl7 import LOINC_EXPECTED, MDC_EXPECTED, MDC_MESSAGE

from devices.encode import to_fhir, to_hl7, to_json
from monitor.ingest.decode_fhir import decode_fhir
from monitor.ingest.decode_hl7 import decode_hl7
from monitor.ingest.decode_json import decode_vitals
from monitor.ingest.messages import ACVPU, Observation, Rejected
from tests.support.fuzz import NOW


def tenths(low: float, high: float) -> st.SearchStrategy[float]:
    return st.integers(round(low * 10), round(high * 10)).map(lambda n: n / 10)


# Values as devices report them: one decimal, temperature two, FiO2 a whole percentage.
VALUES = {
    "hr": tenths(0, 300),
    "rr": tenths(0, 80),
    "spo2": tenths(0, 100),
    "sbp": tenths(0, 300),
    "dbp": tenths(0, 250),
    "map": tenths(0, 250),
    "temp_c": st.integers(2500, 4500).map(lambda n: n / 100),
    "o2_flow_lpm": tenths(0, 80),
    "fio2": st.integers(21, 100).map(lambda n: n / 100),
    "acvpu": st.sampled_from(ACVPU),
}
NOW_MS = round(NOW * 1000)
TIMES = st.integers(-14 * 86400 * 1000, 300 * 1000).map(lambda ms: (NOW_MS + ms) / 1000)
OBSERVATIONS = st.builds(
    Observation, TIMES, st.fixed_dictionaries({}, optional=VALUES).filter(bool)
)
LISTS = st.lists(OBSERVATIONS, min_size=1, max_size=6, unique_by=lambda o: o.ts)


def measured(obs_list: list[Observation]) -> list[Observation]:
    """What FHIR and HL7 carry: everything but acvpu, oldest first."""
    out = [Observation(o.ts, {k: v for k, v in o.values.items() if k != "acvpu"}) for o in obs_list]
    return sorted((o for o in out if o.values), key=lambda o: o.ts)


@settings(max_examples=300)
@given(LISTS)
def test_json_round_trip(obs_list):
    assert decode_vitals(to_json(obs_list), NOW) == sorted(obs_list, key=lambda o: o.ts)


@settings(max_examples=300)
@given(LISTS)
def test_fhir_round_trip(obs_list):
    expected = measured(obs_list)
    payload = to_fhir(obs_list, patient_id="MRN0042")
    if expected:
        assert decode_fhir(payload, NOW) == expected
    else:
        with pytest.raises(Rejected, match="no usable vital signs"):
            decode_fhir(payload, NOW)


@settings(max_examples=300)
@given(LISTS)
def test_hl7_round_trip(obs_list):
    expected = measured(obs_list)
    payload = to_hl7(obs_list, "MRN0042", "7WEST", "BED03", "MSG-1")
    if expected:
        assert decode_hl7(payload, NOW) == expected
    else:
        with pytest.raises(Rejected, match="no OBX segments"):
            decode_hl7(payload, NOW)


def test_literal_messages_survive_re_encoding():
    mdc = decode_hl7(MDC_MESSAGE.encode(), NOW)
    assert decode_hl7(to_hl7(mdc, "MRN0042", "7WEST", "BED03", "X|1^2"), NOW) == MDC_EXPECTED
    assert decode_fhir(to_fhir(LOINC_EXPECTED), NOW) == LOINC_EXPECTED
    bundle = decode_fhir(BUNDLE.encode(), NOW)
    assert decode_vitals(to_json(bundle), NOW) == bundle


SAMPLE = [
    Observation(NOW - 60, {"hr": 112.0, "sbp": 96.0, "dbp": 58.0, "temp_c": 38.4, "acvpu": "A"}),
    Observation(NOW - 30.5, {"spo2": 93.0, "fio2": 0.4}),
]


def test_fhir_is_real_shaped():
    doc = orjson.loads(to_fhir(SAMPLE, patient_id="MRN0042"))
    assert (doc["resourceType"], doc["type"]) == ("Bundle", "collection")
    assert doc["timestamp"] == "2026-11-25T11:59:29.500Z"
    resources = [e["resource"] for e in doc["entry"]]
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in doc["entry"])
    for resource in resources:
        assert resource["resourceType"] == "Observation"
        assert resource["status"] == "final"
        assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
        assert resource["subject"] == {"reference": "Patient/MRN0042"}
        assert resource["code"]["coding"][0]["system"] == "http://loinc.org"
        for q in [resource.get("valueQuantity")] + [
            c["valueQuantity"] for c in resource.get("component", [])
        ]:
            if q is not None:
                assert q["system"] == "http://unitsofmeasure.org"
    panel = next(r for r in resources if r["code"]["coding"][0]["code"] == "85354-9")
    assert [c["code"]["coding"][0]["code"] for c in panel["component"]] == ["8480-6", "8462-4"]
    assert panel["effectiveDateTime"] == "2026-11-25T11:59:00.000Z"
    fio2 = next(r for r in resources if r["code"]["coding"][0]["code"] == "3150-0")
    assert fio2["valueQuantity"] == {
        "value": 40.0,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }


def test_fhir_single_observation():
    doc = orjson.loads(to_fhir([Observation(NOW, {"hr": 80.0})], bundle=False))
    assert doc["resourceType"] == "Observation" and "subject" not in doc
    assert decode_fhir(orjson.dumps(doc), NOW) == [Observation(NOW, {"hr": 80.0})]
    with pytest.raises(ValueError):
        to_fhir(SAMPLE, bundle=False)


def test_hl7_is_real_shaped():
    text = to_hl7(SAMPLE, "MRN0042", "7WEST", "BED03", "MSG-1").decode()
    assert text.endswith("\r") and "\n" not in text
    segments = text.rstrip("\r").split("\r")
    assert [s[:3] for s in segments] == ["MSH", "PID", "PV1", "OBR"] + ["OBX"] * 4 + ["OBR"] + [
        "OBX"
    ] * 2
    msh = segments[0].split("|")
    assert msh[1] == "^~\\&" and msh[8] == "ORU^R01^ORU_R01" and msh[9] == "MSG-1"
    assert msh[6] == "20261125115929.500+0000"
    assert segments[1].startswith("PID|||MRN0042^^^")
    assert segments[2] == "PV1||I|7WEST^^BED03"
    assert segments[4] == (
        "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|112|264864^MDC_DIM_BEAT_PER_MIN^MDC"
        "|||||R|||20261125115900+0000"
    )
    assert "|152196^MDC_CONC_AWAY_O2_INSP^MDC|1.6.1.1|40|262688^MDC_DIM_PERCENT^MDC|" in text
    assert "acvpu" not in text.lower()


def test_hl7_escapes_separators_in_text():
    text = to_hl7(SAMPLE[:1], "P1", "W", "B", "A|B^C&D~E\\F").decode()
    assert "|A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F|" in text
    assert decode_hl7(text.encode(), NOW)[0].values["hr"] == 112.0


def test_json_is_the_spec_payload():
    assert orjson.loads(to_json(SAMPLE[1:])) == [
        {"ts": "2026-11-25T11:59:29.500Z", "spo2": 93.0, "fio2": 0.4}
    ]
