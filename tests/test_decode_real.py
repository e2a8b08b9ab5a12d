"""What real monitors, gateways and FHIR servers send (issue 17): each case built from a
public example, its source named; the shapes kept, identifiers and times changed."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from test_decode_json import at
from test_timeline import T0, FakeClock, Ward

from monitor.clock import iso
from monitor.ingest.decode_fhir import decode_fhir
from monitor.ingest.decode_hl7 import decode_hl7
from monitor.ingest.messages import Observation, Rejected
from tests.conftest import wait_for
from tests.support.db import count, query
from tests.test_ingest import admit

NOW = at("2026-11-25T12:00:00Z")
BERLIN = ZoneInfo("Europe/Berlin")

# -- FHIR R4 ------------------------------------------------------------------------------

# FHIR R4 specification, observation-example-satO2 ("SpO2 by pulse oximetry"): LOINC and
# MDC codings side by side, the value in %.
SATO2 = {
    "resourceType": "Observation",
    "id": "satO2",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
    "identifier": [{"system": "http://goodcare.org/observation/id", "value": "o1223435-10"}],
    "partOf": [{"reference": "Procedure/ob"}],
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ],
            "text": "Vital Signs",
        }
    ],
    "code": {
        "coding": [
            {
                "system": "http://loinc.org",
                "code": "2708-6",
                "display": "Oxygen saturation in Arterial blood",
            },
            {
                "system": "http://loinc.org",
                "code": "59408-5",
                "display": "Oxygen saturation in Arterial blood by Pulse oximetry",
            },
            {
                "system": "urn:iso:std:iso:11073:10101",
                "code": "150456",
                "display": "MDC_PULS_OXIM_SAT_O2",
            },
        ]
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2026-11-25T12:58:10+01:00",
    "valueQuantity": {
        "value": 95,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    },
    "interpretation": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "N",
                    "display": "Normal",
                }
            ]
        }
    ],
    "device": {"reference": "DeviceMetric/example"},
    "referenceRange": [{"low": {"value": 90, "unit": "%"}, "high": {"value": 99, "unit": "%"}}],
}


def us_core_pulse_ox() -> dict:
    """US Core 6.1 pulse-oximetry example (Observation/satO2-fiO2): SpO2 with the inhaled
    oxygen flow (3151-8) and concentration (3150-0) as components."""
    return {
        "resourceType": "Observation",
        "id": "satO2-fiO2",
        "meta": {
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-pulse-oximetry"]
        },
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ],
                "text": "Vital Signs",
            }
        ],
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "2708-6", "display": "Oxygen saturation"},
                {"system": "http://loinc.org", "code": "59408-5", "display": "SpO2 by oximetry"},
            ],
            "text": "oxygen_saturation",
        },
        "subject": {"reference": "Patient/example", "display": "Amy Shaw"},
        "effectiveDateTime": "2026-11-25T12:58:10+01:00",
        "valueQuantity": {
            "value": 99,
            "unit": "%O2",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
        "component": [
            {
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "3151-8",
                            "display": "Inhaled oxygen flow rate",
                        }
                    ],
                    "text": "Inhaled oxygen flow rate",
                },
                "valueQuantity": {
                    "value": 6,
                    "unit": "liters/min",
                    "system": "http://unitsofmeasure.org",
                    "code": "L/min",
                },
            },
            {
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "3150-0",
                            "display": "Inhaled oxygen concentration",
                        }
                    ],
                    "text": "Inhaled oxygen concentration",
                },
                "valueQuantity": {
                    "value": 40,
                    "unit": "%O2",
                    "system": "http://unitsofmeasure.org",
                    "code": "%",
                },
            },
        ],
    }


def phd_blood_pressure() -> dict:
    """HL7 Personal Health Device IG (PHD) blood-pressure Observation as a PHG (personal
    health gateway) sends it: the compound coded MDC_PRESS_BLD_NONINV with LOINC beside,
    the components coded with MDC only."""

    def mdc(code: str, name: str) -> dict:
        return {
            "coding": [{"system": "urn:iso:std:iso:11073:10101", "code": code, "display": name}]
        }

    def mmhg(value: float) -> dict:
        return {
            "value": value,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        }

    return {
        "resourceType": "Observation",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation"
            ]
        },
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": "urn:iso:std:iso:11073:10101",
                    "code": "150020",
                    "display": "MDC_PRESS_BLD_NONINV",
                },
                {"system": "http://loinc.org", "code": "85354-9"},
            ]
        },
        "effectiveDateTime": "2026-11-25T11:55:00Z",
        "component": [
            {"code": mdc("150021", "MDC_PRESS_BLD_NONINV_SYS"), "valueQuantity": mmhg(96)},
            {"code": mdc("150022", "MDC_PRESS_BLD_NONINV_DIA"), "valueQuantity": mmhg(58)},
            {"code": mdc("150023", "MDC_PRESS_BLD_NONINV_MEAN"), "valueQuantity": mmhg(70)},
        ],
    }


def fhir(resource: dict, **kw) -> list[Observation]:
    return decode_fhir(orjson.dumps(resource), NOW, **kw)


def fhir_reason(resource: dict | bytes, **kw) -> str:
    raw = resource if isinstance(resource, bytes) else orjson.dumps(resource)
    with pytest.raises(Rejected) as info:
        decode_fhir(raw, NOW, **kw)
    return info.value.reason


def test_fhir_spec_sato2_with_loinc_and_mdc_codings():
    assert fhir(SATO2) == [Observation(at("2026-11-25T11:58:10Z"), {"spo2": 95.0})]


def test_us_core_pulse_oximetry_keeps_the_oxygen_components():
    assert fhir(us_core_pulse_ox()) == [
        Observation(at("2026-11-25T11:58:10Z"), {"spo2": 99.0, "o2_flow_lpm": 6.0, "fio2": 0.4})
    ]


def test_phd_blood_pressure_coded_only_with_mdc():
    assert fhir(phd_blood_pressure()) == [
        Observation(at("2026-11-25T11:55:00Z"), {"sbp": 96.0, "dbp": 58.0, "map": 70.0})
    ]


def test_fhir_xml_says_only_json_is_read():
    # the start of the FHIR R4 specification's observation-example.xml
    xml = b'<?xml version="1.0" encoding="UTF-8"?><Observation xmlns="http://hl7.org/fhir">'
    assert fhir_reason(xml) == (
        "payload is XML: CRSWatch reads FHIR JSON only (application/fhir+json); "
        "set the sender or its gateway to send JSON"
    )


def test_fhir_test_data_is_not_patient_data():
    tagged = {
        **SATO2,
        "meta": {
            "security": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST"}
            ]
        },
    }
    assert fhir_reason(tagged) == (
        "Observation meta.security HTEST: test data, not patient data; not stored"
    )
    notes: list[str] = []
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": tagged}, {"resource": phd_blood_pressure()}],
    }
    assert fhir(bundle, notes=notes) == [
        Observation(at("2026-11-25T11:55:00Z"), {"sbp": 96.0, "dbp": 58.0, "map": 70.0})
    ]
    assert notes == ["entry[0]: skipped: meta.security HTEST (test data, not patient data)"]


def test_fhir_time_without_zone_takes_the_site_zone_or_names_the_setting():
    naive = {**SATO2, "effectiveDateTime": "2026-11-25T12:58:10"}
    assert fhir(naive, local_tz=BERLIN)[0].ts == at("2026-11-25T11:58:10Z")
    assert "set ingest.local_timezone" in fhir_reason(naive)


# -- HL7 v2 -------------------------------------------------------------------------------


def hl7(*segments: str) -> bytes:
    return "\r".join(segments).encode()


MSH = "MSH|^~\\&|{app}|{fac}|CRSWATCH|HOSP|{t}||ORU^R01|{id}|{pid}|{v}"


def msh(t="20261125115805+0000", app="MON", fac="ICU", pid="P", v="2.6", id="1") -> str:
    return MSH.format(t=t, app=app, fac=fac, pid=pid, v=v, id=id)


def test_pulse_rate_lines_as_the_issue_reports_them():
    # the issue's line: code 149522 with the name MDC_PULS_RATE (IEEE 11073-10101 has
    # 149514 MDC_PULS_RATE and 149522 MDC_BLD_PULS_RATE_INV: both a pulse rate, so read)
    message = hl7(
        msh(),
        "OBX|1|NM|149522^MDC_PULS_RATE^MDC|1.2.1.1|88|264864^MDC_DIM_BEAT_PER_MIN^MDC"
        "|||||F|||20261125115800+0000",
    )
    assert decode_hl7(message, NOW) == [Observation(at("2026-11-25T11:58:00Z"), {"hr": 88.0})]


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        ("149514^MDC_PULS_RATE^MDC", "71", {"hr": 71.0}),
        ("149546^MDC_PULS_RATE_NON_INV^MDC", "72", {"hr": 72.0}),
        ("151578^MDC_TTHOR_RESP_RATE^MDC", "18", {"rr": 18.0}),
        ("151594^MDC_CO2_RESP_RATE^MDC", "19", {"rr": 19.0}),
        ("151570^MDC_AWAY_RESP_RATE^MDC", "20", {"rr": 20.0}),
        ("150392^MDC_TEMP_TYMP^MDC", "38.1", {"temp_c": 38.1}),
        ("188452^MDC_TEMP_AXILLA^MDC", "37.4", {"temp_c": 37.4}),
        ("150364^MDC_TEMP_BODY^MDC", "37.9", {"temp_c": 37.9}),
        ("150037^MDC_PRESS_BLD_ART_ABP_SYS^MDC", "101", {"sbp": 101.0}),
        ("150039^MDC_PRESS_BLD_ART_ABP_MEAN^MDC", "73", {"map": 73.0}),
        ("152196^MDC_CONC_AWAY_O2_INSP^MDC", "40", {"fio2": 0.4}),
    ],
)
def test_mdc_vital_sign_terms(code, value, expected):
    unit = {
        "hr": "/min",
        "rr": "/min",
        "temp_c": "Cel",
        "sbp": "mm[Hg]",
        "map": "mm[Hg]",
        "fio2": "%",
    }
    line = (
        f"OBX|1|NM|{code}|1|{value}|{unit[next(iter(expected))]}^^UCUM|||||R|||20261125115800+0000"
    )
    assert decode_hl7(hl7(msh(), line), NOW) == [Observation(at("2026-11-25T11:58:00Z"), expected)]


def test_ge_b40_pcd01_invasive_pressure_channel():
    # GE B40 monitor HL7 interface manual, PCD-01 example: VMD and channel OBX without
    # values, arterial pressure 150033-150035 and the invasive pulse rate 149522
    message = hl7(
        msh(app="B40^080019FFFE0B4020^EUI-64", fac="GE"),
        "PV1||I|ICU^^BED3",
        "OBR|1|||182777000^monitoring of patient^SCT|||20261125115800+0000",
        "OBX|2||69854^MDC_DEV_METER_PRESS_BLD_VMD^MDC|1.13.0.0|||||||X",
        "OBX|3||69855^MDC_DEV_METER_PRESS_BLD_CHAN^MDC|1.13.1.0|||||||X",
        "OBX|4|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC|1.13.1.1|112|266016^MDC_DIM_MMHG^MDC|||||R"
        "|||||||080019FFFE0B4020^B40_GE",
        "OBX|5|NM|150034^MDC_PRESS_BLD_ART_DIA^MDC|1.13.1.2|76|266016^MDC_DIM_MMHG^MDC|||||R",
        "OBX|6|NM|150035^MDC_PRESS_BLD_ART_MEAN^MDC|1.13.1.3|95|266016^MDC_DIM_MMHG^MDC|||||R",
        "OBX|7|NM|149522^MDC_BLD_PULS_RATE_INV^MDC|1.13.1.4|80|264864^MDC_DIM_BEAT_PER_MIN^MDC"
        "|||||R",
    )
    assert decode_hl7(message, NOW) == [
        Observation(
            at("2026-11-25T11:58:00Z"), {"sbp": 112.0, "dbp": 76.0, "map": 95.0, "hr": 80.0}
        )
    ]


def mindray_egateway(msh7: str = "20261125125805", obx14: str = "20261125125800") -> bytes:
    """Mindray eGateway-shaped ORU^R01 (HL7 v2.3.1): local times without a zone."""
    return hl7(
        f"MSH|^~\\&|Mindray|eGateway|||{msh7}||ORU^R01|106|P|2.3.1||||||UNICODE",
        "PID|||12345||Doe^Jane",
        "PV1||I|CCU^^BED07",
        f"OBR||||Mindray Monitor|||{obx14}",
        f"OBX||NM|150037^MDC_PRESS_BLD_ART_ABP_SYS^MDC|2.1.1.150037|118|266016^MDC_DIM_MMHG^MDC"
        f"|||||F|||{obx14}",
        f"OBX||NM|151562^MDC_RESP_RATE^MDC|2.1.1.151562|17|264928^MDC_DIM_RESP_PER_MIN^MDC"
        f"|||||F|||{obx14}",
        f"OBX||NM|151578^MDC_TTHOR_RESP_RATE^MDC|2.1.1.151578|16|264928^MDC_DIM_RESP_PER_MIN^MDC"
        f"|||||F|||{obx14}",
    )


def test_local_times_take_the_site_zone():
    assert decode_hl7(mindray_egateway(), NOW, local_tz=BERLIN) == [
        Observation(at("2026-11-25T11:58:00Z"), {"sbp": 118.0, "rr": 17.0})
    ]


def test_local_times_without_a_site_zone_name_the_setting():
    with pytest.raises(Rejected) as info:
        decode_hl7(mindray_egateway(), NOW)
    assert info.value.reason == (
        "OBX #1: no time zone in OBX-14 nor in MSH-7; "
        "set ingest.local_timezone to read such times in the site's zone"
    )


def test_a_zone_less_obx_time_inherits_msh7s_zone():
    # Philips PIC iX-shaped export: MSH-7 with its zone, OBX-14 without
    message = hl7(
        msh(t="20261125125805+0100", app="PIC iX", fac="Philips"),
        "OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|94|262688^MDC_DIM_PERCENT^MDC"
        "|||||F|||20261125125800",
    )
    # the site zone, were it set, does not apply: MSH-7 states the sender's
    assert decode_hl7(message, NOW, local_tz=ZoneInfo("America/New_York")) == [
        Observation(at("2026-11-25T11:58:00Z"), {"spo2": 94.0})
    ]


@pytest.mark.parametrize("local", ["20261025023000", "20260329023000"])
def test_a_local_time_a_dst_change_repeats_or_skips_is_rejected(local):
    now = at("2026-10-25T02:00:00Z") if local.startswith("202610") else at("2026-03-29T02:00:00Z")
    with pytest.raises(Rejected) as info:
        decode_hl7(mindray_egateway(msh7=local, obx14=local), now, local_tz=BERLIN)
    assert "is ambiguous or does not exist in Europe/Berlin" in info.value.reason


def obx(status: str, flag: str = "", value: str = "93") -> str:
    return (
        f"OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1|{value}|262688^MDC_DIM_PERCENT^MDC||{flag}"
        f"|||{status}|||20261125115800+0000"
    )


HR_LINE = (
    "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1|80|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||"
    "20261125115800+0000"
)


@pytest.mark.parametrize("status", ["F", "C", "R", "P", "S", "U"])
def test_result_statuses_that_carry_a_result(status):
    assert decode_hl7(hl7(msh(), HR_LINE, obx(status)), NOW) == [
        Observation(at("2026-11-25T11:58:00Z"), {"hr": 80.0, "spo2": 93.0})
    ]


@pytest.mark.parametrize("status", ["X", "D", "W", "I", "N", "O"])
def test_result_statuses_without_a_result_are_skipped_and_said(status):
    notes: list[str] = []
    assert decode_hl7(hl7(msh(), HR_LINE, obx(status)), NOW, notes=notes) == [
        Observation(at("2026-11-25T11:58:00Z"), {"hr": 80.0})
    ]
    assert len(notes) == 1 and notes[0].startswith(f"OBX #2: spo2 skipped: OBX-11 {status} (")


def test_a_status_without_a_value_is_absent_not_said():
    notes: list[str] = []
    decode_hl7(hl7(msh(), HR_LINE, obx("X", value="")), NOW, notes=notes)
    assert notes == []


@pytest.mark.parametrize("flag", ["test-data", "demo-data", "DEMO"])
def test_values_flagged_as_test_or_demo_are_not_stored(flag):
    notes: list[str] = []
    assert decode_hl7(hl7(msh(), HR_LINE, obx("R", flag)), NOW, notes=notes) == [
        Observation(at("2026-11-25T11:58:00Z"), {"hr": 80.0})
    ]
    assert notes == [f"OBX #2: spo2 skipped: OBX-8 {flag} (not patient data)"]


@pytest.mark.parametrize(("pid", "meaning"), [("T", "training"), ("D", "debugging")])
def test_training_and_debugging_messages_are_rejected(pid, meaning):
    with pytest.raises(Rejected) as info:
        decode_hl7(hl7(msh(pid=pid), HR_LINE), NOW)
    assert info.value.reason == (
        f"MSH-11 processing ID {pid} ({meaning}): not patient data, not stored; "
        "send production messages (P)"
    )


def test_several_respiration_sources_never_conflict():
    # ECG impedance, capnograph and the monitor's chosen rate at one time, all different
    message = hl7(
        msh(),
        "OBX|1|NM|151578^MDC_TTHOR_RESP_RATE^MDC|1|16|/min|||||R|||20261125115800+0000",
        "OBX|2|NM|151594^MDC_CO2_RESP_RATE^MDC|1|18|/min|||||R|||20261125115800+0000",
        "OBX|3|NM|151562^MDC_RESP_RATE^MDC|1|17|/min|||||R|||20261125115800+0000",
    )
    assert decode_hl7(message, NOW) == [Observation(at("2026-11-25T11:58:00Z"), {"rr": 17.0})]


def test_the_pulse_oximeters_oxygen_reaches_the_crs_grade(tmp_path):
    """US Core's SpO2 with 6 L/min through the daemon's pipeline: a febrile patient whose
    oxygen nobody has entered yet is graded as on oxygen (CRS at least 2), not room air."""
    ward = Ward(tmp_path, FakeClock(T0 + 60))
    ward.vitals(T0 + 20, temp_c=38.6, hr=110, rr=20, sbp=120, map=85, acvpu="A")
    ward.send("fhir", {**us_core_pulse_ox(), "effectiveDateTime": iso(T0 + 30)}, at=T0 + 40)
    state = ward.state()
    assert state["crs_grade"] is None and state["crs_at_least"] == 2
    assert "oxygen given 6 L/min, FiO2 40 %, device unknown" in state["reasons"]
    # without the components the same patient reads as on room air: grade 1
    bare = {**us_core_pulse_ox(), "effectiveDateTime": iso(T0 + 50)}
    del bare["component"]
    other = Ward(tmp_path / "b", FakeClock(T0 + 60))
    other.vitals(T0 + 20, temp_c=38.6, hr=110, rr=20, sbp=120, map=85, acvpu="A")
    other.send("fhir", bare, at=T0 + 55)
    assert other.state()["crs_grade"] == 1


async def test_partly_stored_hl7_is_said_on_rejected_and_ward_zone_applies(
    make_daemon, publisher, listen
):
    """Over MQTT: a monitor's demo-flagged OBX is not stored and is said on {p}/rejected;
    the ward's own zone reads its zone-less times (ingest.ward_timezones)."""
    d = await make_daemon(
        ingest={"local_timezone": "America/New_York", "ward_timezones": ["w1=Europe/Berlin"]}
    )
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now=now)
    await wait_for(lambda: count(db, "admissions") == 1, what="admitted")
    ts = int(now) - 30
    local = datetime.fromtimestamp(ts, BERLIN).strftime("%Y%m%d%H%M%S")
    message = hl7(
        f"MSH|^~\\&|Mindray|eGateway|||{local}||ORU^R01|7|P|2.3.1",
        f"OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1|91|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F|||{local}",
        f"OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1|88|262688^MDC_DIM_PERCENT^MDC||demo-data"
        f"|||F|||{local}",
    )
    async with listen(f"{p}/rejected") as rejected:
        await publisher(f"{p}/w1/b1/hl7", message)
        await wait_for(lambda: rejected.json(), what="the partial rejection")
    assert query(db, "SELECT ts, hr, spo2 FROM observations") == [(float(ts), 91.0, None)]
    (said,) = rejected.json()
    assert said["partial"] is True and said["topic"] == f"{p}/w1/b1/hl7"
    assert (
        said["reason"] == "partly stored: OBX #2: spo2 skipped: OBX-8 demo-data (not patient data)"
    )
    assert count(db, "rejections") == 0  # stored, not rejected


def test_an_impossible_msh7_zone_is_not_replaced_by_the_site_zone():
    message = hl7(
        msh(t="20261125125805+0099"),
        "OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1|94|%|||||F|||20261125115800",
    )
    with pytest.raises(Rejected) as info:
        decode_hl7(message, NOW, local_tz=BERLIN)
    assert "no time zone in OBX-14 nor in MSH-7" in info.value.reason
