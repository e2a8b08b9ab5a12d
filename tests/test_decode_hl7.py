"""HL7 v2 ORU^R01 from patient monitors (IHE PCD-01)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decode_json import at

from monitor.ingest.decode_hl7 import decode_hl7
from monitor.ingest.messages import Observation, Rejected
from tests.support.fuzz import NOW, fuzz_hl7, mutate_hl7

# A multi-parameter monitor through its PCD-01 gateway: MDS/VMD/channel hierarchy OBX
# without values, ECG and SpO2 pulse rates, a temperature that takes OBR-7, a cuff pressure
# measured 3 minutes earlier (its own OBX-14), an arterial line, and a skin temperature.
MDC_MESSAGE = "\r".join(
    [
        "MSH|^~\\&|PAT_DEVICE_MX800^0030C6FFFE8A1B2C^EUI-64|7WEST|CRSWATCH^ACDE48234567ABCD^EUI-64|HOSP"
        "|20261125115805+0000||ORU^R01^ORU_R01|MX800-000123|P|2.6|||NE|AL||UNICODE UTF-8|||"
        "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        "PID|||MRN0042^^^HOSP^MR||Doe^Jane^^^^^L||19720314|F",
        "PV1||I|7WEST^^BED03",
        "OBR|1|MX800-000123^PAT_DEVICE_MX800^0030C6FFFE8A1B2C^EUI-64|MX800-000123^PAT_DEVICE_MX800"
        "^0030C6FFFE8A1B2C^EUI-64|182777000^monitoring of patient^SCT|||20261125115800+0000",
        "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||0030C6FFFE8A1B2C^EUI-64",
        "OBX|2||69798^MDC_DEV_ECG_VMD^MDC|1.1.0.0|||||||X",
        "OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|112|264864^MDC_DIM_BEAT_PER_MIN^MDC|50-120"
        "||||R|||20261125115800+0000",
        "OBX|4|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.2.1.2|109|264864^MDC_DIM_BEAT_PER_MIN^MDC"
        "|||||R|||20261125115800+0000",
        "OBX|5|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|93|262688^MDC_DIM_PERCENT^MDC|90-100"
        "|L|||R|||20261125115800+0000",
        "OBX|6|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|22|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||"
        "20261125115800+0000",
        "OBX|7|NM|150344^MDC_TEMP^MDC|1.4.1.1|38.4|268192^MDC_DIM_DEGC^MDC|||||R",
        "OBX|8|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.5.1.1|96|266016^MDC_DIM_MMHG^MDC|||||R|||"
        "20261125115500+0000|||^APERIODIC",
        "OBX|9|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.5.1.2|58|266016^MDC_DIM_MMHG^MDC|||||R|||"
        "20261125115500+0000|||^APERIODIC",
        "OBX|10|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.5.1.3|70|266016^MDC_DIM_MMHG^MDC|||||R|||"
        "20261125115500+0000|||^APERIODIC",
        "OBX|11|NM|150033^MDC_PRESS_BLD_ART_ABP_SYS^MDC|1.6.1.1|94|266016^MDC_DIM_MMHG^MDC|||||R|||"
        "20261125115800+0000",
        "OBX|12|NM|150035^MDC_PRESS_BLD_ART_ABP_MEAN^MDC|1.6.1.3|68|266016^MDC_DIM_MMHG^MDC|||||R|||"
        "20261125115800+0000",
        "OBX|13|NM|150388^MDC_TEMP_SKIN^MDC|1.4.2.1|33.1|268192^MDC_DIM_DEGC^MDC|||||R|||"
        "20261125115800+0000",
        "",
    ]
)
MDC_EXPECTED = [
    Observation(at("2026-11-25T11:55:00Z"), {"sbp": 96.0, "dbp": 58.0, "map": 70.0}),
    Observation(
        at("2026-11-25T11:58:00Z"),
        {"hr": 112.0, "spo2": 93.0, "rr": 22.0, "temp_c": 38.4, "sbp": 94.0, "map": 68.0},
    ),
]

# A spot-check vitals device, LOINC-coded with UCUM units, times in local time (+0100),
# a temperature in degF, an NTE, and a corrected oxygen flow with its own time.
LOINC_MESSAGE = "\r".join(
    [
        "MSH|^~\\&|SPOTCHECK^VSM300^L|7WEST|CRSWATCH|HOSP|20261125124500+0100||ORU^R01|SC-7781|P|2.5.1",
        "PID|||MRN0042^^^HOSP^MR||M\xfcller^Anna",
        "PV1||I|7WEST^^BED03",
        "OBR|1||SC-7781|34566-0^Vital signs with method details panel^LN|||20261125124400+0100",
        "NTE|1||Patient resting",
        "OBX|1|NM|8867-4^Heart rate^LN||88|/min^^UCUM|||||F",
        "OBX|2|NM|9279-1^Respiratory rate^LN||18|{breaths}/min^^UCUM|||||F",
        "OBX|3|NM|59408-5^Oxygen saturation in Arterial blood by Pulse oximetry^LN||95|%^^UCUM"
        "|||||F",
        "OBX|4|NM|8310-5^Body temperature^LN||100.4|[degF]^^UCUM|||||F",
        "OBX|5|NM|8480-6^Systolic blood pressure^LN||128|mm[Hg]^^UCUM|||||F",
        "OBX|6|NM|8462-4^Diastolic blood pressure^LN||76|mm[Hg]^^UCUM|||||F",
        "OBX|7|NM|3150-0^Inhaled oxygen concentration^LN||28|%^^UCUM|||||F",
        "OBX|8|NM|3151-8^Inhaled oxygen flow rate^LN||2|L/min^^UCUM|||||C|||20261125124300+0100",
        "OBX|9|ST|8302-2^Body height^LN||unknown||||||F",
    ]
)
LOINC_EXPECTED = [
    Observation(at("2026-11-25T11:43:00Z"), {"o2_flow_lpm": 2.0}),
    Observation(
        at("2026-11-25T11:44:00Z"),
        {
            "hr": 88.0,
            "rr": 18.0,
            "spo2": 95.0,
            "temp_c": 38.0,
            "sbp": 128.0,
            "dbp": 76.0,
            "fio2": 0.28,
        },
    ),
]


def test_mdc_message_from_a_monitor():
    assert decode_hl7(MDC_MESSAGE.encode(), NOW) == MDC_EXPECTED


def test_loinc_message_latin1():
    assert decode_hl7(LOINC_MESSAGE.encode("latin-1"), NOW) == LOINC_EXPECTED
    assert decode_hl7(LOINC_MESSAGE.encode("utf-8"), NOW) == LOINC_EXPECTED


@pytest.mark.parametrize(
    "frame",
    [
        lambda m: b"\x0b" + m + b"\x1c\r",
        lambda m: m.replace(b"\r", b"\n"),
        lambda m: m.replace(b"\r", b"\r\n"),
    ],
)
def test_framing_and_line_ends(frame):
    assert decode_hl7(frame(MDC_MESSAGE.encode()), NOW) == MDC_EXPECTED


def test_separators_come_from_msh():
    message = MDC_MESSAGE.replace("|", "#").replace("^", "$")
    assert decode_hl7(message.encode(), NOW) == MDC_EXPECTED


def msg(*obx: str, msh7: str = "20261125115805+0000", obr7: str = "20261125115800+0000") -> bytes:
    segments = [
        f"MSH|^~\\&|MON^0030C6FFFE8A1B2C^EUI-64|7WEST|CRSWATCH|HOSP|{msh7}||ORU^R01^ORU_R01|M1|P|2.6",
        "PID|||MRN0042^^^HOSP^MR",
        f"OBR|1|M1^MON|M1^MON|182777000^monitoring of patient^SCT|||{obr7}",
        *obx,
    ]
    return "\r".join(segments).encode()


HR = "147842^MDC_ECG_HEART_RATE^MDC"
BPM = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
T0 = "20261125115800+0000"


def obx(code=HR, value="80", unit=BPM, status="R", time=T0, kind="NM") -> str:
    return f"OBX|1|{kind}|{code}|1.1.1.1|{value}|{unit}|||||{status}|||{time}"


def test_pulse_rate_is_heart_rate_without_ecg():
    pulse = "149530^MDC_PULS_OXIM_PULS_RATE^MDC"
    assert decode_hl7(msg(obx(pulse, "77")), NOW) == [Observation(NOW - 120, {"hr": 77.0})]


def test_arterial_beats_cuff_at_the_same_time():
    cuff = obx("150301^MDC_PRESS_CUFF_SYS^MDC", "120", "266016^MDC_DIM_MMHG^MDC")
    art = obx("150033^MDC_PRESS_BLD_ART_SYS^MDC", "94", "266016^MDC_DIM_MMHG^MDC")
    assert decode_hl7(msg(cuff, art), NOW) == [Observation(NOW - 120, {"sbp": 94.0})]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (obx("150344^MDC_TEMP^MDC", "101.3", "266560^MDC_DIM_FAHR^MDC"), {"temp_c": 38.5}),
        (obx("188496^MDC_TEMP_AXIL^MDC", "37.9", "268192^MDC_DIM_DEGC^MDC"), {"temp_c": 37.9}),
        (obx("150364^MDC_TEMP_BODY^MDC", "37.9", "Cel^Cel^UCUM"), {"temp_c": 37.9}),
        (
            obx("152196^MDC_CONC_AWAY_O2_INSP^MDC", "40", "262688^MDC_DIM_PERCENT^MDC"),
            {"fio2": 0.4},
        ),
        (obx("150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "101", "mmHg"), {"sbp": 101.0}),
        (obx(HR, "80", "^MDC_DIM_BEAT_PER_MIN^MDC"), {"hr": 80.0}),
        (obx(HR, "+80.50"), {"hr": 80.5}),
        (obx(HR, "80", time="202611251258+0100"), {"hr": 80.0}),
        (obx(HR, "80", time="20261125115800.1234+0000^S"), {"hr": 80.0}),
        (obx(HR, "80", status="C", time=""), {"hr": 80.0}),
    ],
)
def test_codes_units_and_times(line, expected):
    (observation,) = decode_hl7(msg(line), NOW)
    assert observation.values == expected


def test_time_with_fraction_and_zone():
    (observation,) = decode_hl7(msg(obx(time="20261125172800.25+0530")), NOW)
    assert observation.ts == at("2026-11-25T11:58:00.250Z")


def test_time_falls_back_to_msh7():
    (observation,) = decode_hl7(msg(obx(time=""), obr7=""), NOW)
    assert observation.ts == at("2026-11-25T11:58:05Z")


@pytest.mark.parametrize("value", ["", "-999", "8388607", "-8388608"])
def test_no_value_is_skipped_not_rejected(value):
    spo2 = obx("150456^MDC_PULS_OXIM_SAT_O2^MDC", value, "262688^MDC_DIM_PERCENT^MDC")
    assert decode_hl7(msg(obx(), spo2), NOW) == [Observation(NOW - 120, {"hr": 80.0})]


@pytest.mark.parametrize("status", ["X", "D", "W"])
def test_withdrawn_results_are_skipped(status):
    spo2 = obx("150456^MDC_PULS_OXIM_SAT_O2^MDC", "99", "262688^MDC_DIM_PERCENT^MDC", status)
    assert decode_hl7(msg(obx(), spo2), NOW) == [Observation(NOW - 120, {"hr": 80.0})]


HL7_REJECTED = [
    (b"", "not an HL7 v2 message: the first segment is not MSH"),
    (b"hello\rworld", "not an HL7 v2 message: the first segment is not MSH"),
    (b"PID|||1\rMSH|^~\\&|", "the first segment is not MSH"),
    (b"MSH|", "MSH: too short to hold the separators"),
    (b"MSH|^^\\&|A|B", "MSH-1/MSH-2: separators must be distinct"),
    (b"MSH|^~\\&x|A|B", "MSH-1/MSH-2: separators must be distinct"),
    (
        msg(obx()).replace(b"ORU^R01^ORU_R01", b"ADT^A01"),
        "MSH-9: message type 'ADT^A01' is not ORU^R01",
    ),
    (
        msg(obx()).replace(b"ORU^R01^ORU_R01", b"ORU^R30"),
        "MSH-9: message type 'ORU^R30' is not ORU^R01",
    ),
    (msg(obx()).replace(b"ORU^R01^ORU_R01", b""), "MSH-9: message type '' is not ORU^R01"),
    (msg(obx()) + b"\r" + msg(obx()), "more than one MSH segment"),
    (msg(), "no OBX segments in message"),
    (
        msg(obx("69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC", ""), obx("8302-2^Body height^LN")),
        "no usable vital signs in message (2 OBX with codes CRSWatch does not read)",
    ),
    (
        msg(obx(status="X"), obx(value="")),
        "no usable vital signs in message"
        " (1 OBX with status X, D, W, I, N or O, 1 OBX without a value)",
    ),
    (
        msg(obx(time="20261125115800"), msh7="20261125115805"),
        "OBX #1: no time zone in OBX-14 nor in MSH-7; set ingest.local_timezone",
    ),
    (
        msg(obx(time=""), obr7="20261125115800", msh7="20261125115805"),
        "OBX #1: no time zone in OBR-7 nor in MSH-7; set ingest.local_timezone",
    ),
    (
        msg(obx(time=""), obr7="", msh7="202611251158"),
        "OBX #1: no time zone in MSH-7; set ingest.local_timezone",
    ),
    (msg(obx(time=""), obr7="", msh7=""), "OBX #1: no time (OBX-14, OBR-7 and MSH-7 are empty)"),
    (msg(obx(time="20261125+0000")), "OBX #1: OBX-14 is not an HL7 time with minutes"),
    (msg(obx(time="2026-11-25T11:58:00Z")), "OBX-14 is not an HL7 time with minutes"),
    (msg(obx(time="20261345115800+0000")), "OBX #1: OBX-14 is not a valid date, time or zone"),
    (msg(obx(time="20261125115800+0099")), "OBX-14 is not a valid date, time or zone"),
    (msg(obx(time="20261125115800+1500")), "OBX-14 is not a valid date, time or zone"),
    (
        msg(obx(time="20261125130000+0000")),
        "OBX #1: time: 2026-11-25T13:00:00.000Z is 3600 s in the future (limit 300 s)",
    ),
    (msg(obx(time="20261101120000+0000")), "is 2073600 s in the past (limit 1209600 s)"),
    (msg(obx(kind="ST")), "OBX #1: OBX-2 value type 'ST' is not NM (needed for hr)"),
    (msg(obx(kind="")), "OBX-2 value type '' is not NM"),
    (msg(obx(value="abc")), "OBX #1: OBX-5 is not one number"),
    (msg(obx(value="80~81")), "OBX #1: OBX-5 is not one number"),
    (msg(obx(value="1e2")), "OBX #1: OBX-5 is not one number"),
    (msg(obx(value="NaN")), "OBX #1: OBX-5 is not one number"),
    (msg(obx(status="")), "OBX #1: OBX-11 result status missing is not one of F, C, R, P"),
    (msg(obx(status="Z")), "OBX #1: OBX-11 result status 'Z' is not one of F, C, R, P, S, U"),
    (
        msg(obx(unit="266016^MDC_DIM_MMHG^MDC")),
        "OBX #1: OBX-6: unit 'mm[Hg]' is wrong for hr (expected /min, {beats}/min)",
    ),
    (msg(obx(unit="")), "OBX #1: OBX-6: no unit for hr"),
    (msg(obx(unit="furlongs^^UCUM")), "unit 'furlongs' is wrong for hr"),
    (
        msg(obx(unit="262688^MDC_DIM_MMHG^MDC")),
        "OBX #1: OBX-6 unit code 262688 and name MDC_DIM_MMHG differ",
    ),
    (
        msg(obx("150456^MDC_ECG_HEART_RATE^MDC")),
        "OBX #1: OBX-3 code 150456 and name MDC_ECG_HEART_RATE disagree",
    ),
    (msg(obx(value="900")), "OBX #1: hr: 900 /min is outside the possible range 0-300"),
    (
        msg(obx("150456^MDC_PULS_OXIM_SAT_O2^MDC", "120", "262688^MDC_DIM_PERCENT^MDC")),
        "OBX #1: spo2: 120 % is outside the possible range 0-100",
    ),
    (
        msg(obx(), obx("8867-4^Heart rate^LN", "85", "/min^^UCUM")),
        "OBX #2: hr conflicts with OBX #1 at 2026-11-25T11:58:00.000Z",
    ),
]


@pytest.mark.parametrize(("payload", "reason"), HL7_REJECTED)
def test_rejected(payload, reason):
    with pytest.raises(Rejected) as info:
        decode_hl7(payload, NOW)
    assert reason in info.value.reason


def test_one_bad_obx_rejects_the_whole_message():
    bad = MDC_MESSAGE.replace("|93|262688", "|193|262688")
    with pytest.raises(Rejected, match=r"^OBX #5: spo2: 193 % is outside"):
        decode_hl7(bad.encode(), NOW)


def test_reasons_do_not_copy_the_patient():
    bad = MDC_MESSAGE.replace("||ORU^R01^ORU_R01|", "||ADT^A08|")
    with pytest.raises(Rejected) as info:
        decode_hl7(bad.encode(), NOW)
    assert "Doe" not in info.value.reason and "MRN0042" not in info.value.reason


# fuzz --------------------------------------------------------------------------------

FIELD_TEXT = st.text(
    alphabet=st.sampled_from(list("0123456789+-.^~\\&|#XFRNMST MDC_LN/[]%{}eE\x0b\x1c\n")),
    max_size=24,
) | st.sampled_from(["NM", "ST", "F", "X", "", "20261125115800", "20261125115800+0000", "-999"])
EDITS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 20), FIELD_TEXT), min_size=1, max_size=6
)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data):
    fuzz_hl7(data)
    fuzz_hl7(b"MSH|^~\\&|" + data)


@settings(max_examples=300)
@given(st.sampled_from([MDC_MESSAGE, LOINC_MESSAGE]), EDITS)
def test_fuzz_field_mutations(message, edits):
    fuzz_hl7(mutate_hl7(message.encode("utf-8"), edits))


@settings(max_examples=300)
@given(st.sampled_from([MDC_MESSAGE, LOINC_MESSAGE]), st.data())
def test_fuzz_segment_shuffles(message, data):
    segments = message.split("\r")
    picked = data.draw(st.lists(st.sampled_from(segments), max_size=len(segments) + 3))
    fuzz_hl7("\r".join(picked).encode("utf-8"))
