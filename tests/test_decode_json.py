"""CRSWatch JSON payloads: vitals, admit, discharge, care events, device status."""

from __future__ import annotations

import json
from datetime import datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest.decode_json import (
    decode_admit,
    decode_care,
    decode_device,
    decode_discharge,
    decode_vitals,
)
from monitor.ingest.messages import (
    VITALS,
    Admission,
    CareEvent,
    DeviceStatus,
    Discharge,
    Observation,
)
from monitor.ingest.messages import Rejected as R
from tests.support.fuzz import (
    NOW,
    fuzz_admit,
    fuzz_care,
    fuzz_device,
    fuzz_discharge,
    fuzz_vitals,
    json_paths,
    replace_at,
    seeds,
)


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def dumps(value: object) -> bytes:
    return orjson.dumps(value)


def rejected(decode, payload: bytes, *args) -> str:
    with pytest.raises(R) as info:
        decode(payload, *args)
    return info.value.reason


# vitals ------------------------------------------------------------------------------


def test_one_observation_object():
    payload = (
        b'{"ts": "2026-11-25T11:59:00Z", "hr": 112, "rr": 22, "spo2": 93, "sbp": 96,'
        b' "dbp": 58, "map": 70, "temp_c": 38.4, "acvpu": "a"}'
    )
    assert decode_vitals(payload, NOW) == [
        Observation(
            at("2026-11-25T11:59:00Z"),
            {
                "hr": 112.0,
                "rr": 22.0,
                "spo2": 93.0,
                "sbp": 96.0,
                "dbp": 58.0,
                "map": 70.0,
                "temp_c": 38.4,
                "acvpu": "A",
            },
        )
    ]


def test_array_is_sorted_merged_and_null_is_absent():
    payload = dumps(
        [
            {"ts": "2026-11-25T12:59:00+01:00", "hr": 100, "spo2": None},
            {"ts": NOW - 120, "o2_flow_lpm": 4, "fio2": 0.4},
            {"ts": "2026-11-25T11:59:00.000Z", "rr": 20, "hr": 100},
        ]
    )
    assert decode_vitals(payload, NOW) == [
        Observation(NOW - 120, {"o2_flow_lpm": 4.0, "fio2": 0.4}),
        Observation(NOW - 60, {"hr": 100.0, "rr": 20.0}),
    ]


def test_time_window_edges_are_accepted():
    assert decode_vitals(dumps({"ts": NOW + 300, "hr": 1}), NOW)[0].ts == NOW + 300
    assert decode_vitals(dumps({"ts": NOW - 14 * 86400, "hr": 1}), NOW)[0].ts == NOW - 14 * 86400
    wide = decode_vitals(dumps({"ts": NOW + 600, "hr": 1}), NOW, 900.0)
    assert wide[0].ts == NOW + 600


def _many(n: int) -> bytes:
    return dumps([{"ts": NOW - i, "hr": 80} for i in range(n)])


def test_array_of_1000_is_accepted():
    assert len(decode_vitals(_many(1000), NOW)) == 1000


VITALS_REJECTED = [
    (b"{not json", "payload is not valid JSON"),
    (b"", "payload is not valid JSON"),
    (b'{"ts": 1, "hr": \xff}', "payload is not valid JSON"),
    (b'{"ts": 1795608000, "hr": NaN}', "payload is not valid JSON"),
    (b'{"ts": 1795608000, "hr": 1e400}', "payload is not valid JSON"),
    (b"42", "expected an observation object or an array, got a number"),
    (b'"hr"', "expected an observation object or an array, got a string"),
    (b"[]", "empty array: no observations"),
    (_many(1001), "array of 1001 observations (limit 1000)"),
    (b"[1]", "[0]: expected an observation object, got a number"),
    (dumps({"ts": NOW, "hr": 900}), "hr: 900 /min is outside the possible range 0-300"),
    (dumps({"ts": NOW, "spo2": 120}), "spo2: 120 % is outside the possible range 0-100"),
    (dumps({"ts": NOW, "hr": -1}), "hr: -1 /min is outside the possible range 0-300"),
    (dumps({"ts": NOW, "temp_c": 50}), "temp_c: 50 C is outside the possible range 25-45"),
    (dumps({"ts": NOW, "fio2": 40}), "fio2: 40 is outside the possible range 0.21-1"),
    (dumps({"ts": NOW, "hr": True}), "hr: expected a number, got a boolean"),
    (dumps({"ts": NOW, "hr": "72"}), "hr: expected a number, got a string"),
    (dumps({"ts": NOW, "hr": [72]}), "hr: expected a number, got an array"),
    (dumps({"ts": NOW, "acvpu": "X"}), "acvpu: expected one of A, C, V, P, U"),
    (dumps({"ts": NOW, "acvpu": 1}), "acvpu: expected one of A, C, V, P, U"),
    (dumps({"ts": NOW, "heart_rate": 72}), "unknown field 'heart_rate'"),
    (dumps({"ts": NOW}), "no vitals in observation"),
    (dumps({"ts": NOW, "hr": None, "rr": None}), "no vitals in observation"),
    (dumps({"hr": 72}), "ts: missing"),
    (dumps({"ts": True, "hr": 72}), "ts: expected ISO 8601 with a zone or epoch seconds"),
    (dumps({"ts": "yesterday", "hr": 72}), "ts: not an ISO 8601 time"),
    (dumps({"ts": "2026-11-25T11:59:00", "hr": 72}), "ts: ISO 8601 time without a zone"),
    (dumps({"ts": "2026-11-25", "hr": 72}), "ts: ISO 8601 time without a zone"),
    (
        dumps({"ts": "2026-11-25T13:00:00Z", "hr": 72}),
        "ts: 2026-11-25T13:00:00.000Z is 3600 s in the future (limit 300 s)",
    ),
    (dumps({"ts": NOW + 301, "hr": 72}), "s in the future (limit 300 s)"),
    (
        dumps({"ts": NOW - 15 * 86400, "hr": 72}),
        "ts: 2026-11-10T12:00:00.000Z is 1296000 s in the past (limit 1209600 s)",
    ),
    (dumps({"ts": 1e300, "hr": 72}), "ts: 1e+300 is "),
    (
        dumps([{"ts": NOW, "hr": 80}, {"ts": NOW, "hr": 81}]),
        "[1]: hr conflicts with [0] at 2026-11-25T12:00:00.000Z",
    ),
    (dumps([{"ts": NOW, "hr": 80}, {"ts": NOW, "hr": 900}]), "[1]: hr: 900 /min is outside"),
    (dumps([{"ts": NOW, "hr": 80}, {"hr": 80}]), "[1]: ts: missing"),
]


@pytest.mark.parametrize(("payload", "reason"), VITALS_REJECTED)
def test_vitals_rejected(payload, reason):
    assert reason in rejected(decode_vitals, payload, NOW)


def test_payload_size_limit():
    big = b'{"ts": 1795608000, "hr": 80' + b" " * (4 * 1024 * 1024) + b"}"
    assert "limit 4194304" in rejected(decode_vitals, big, NOW)


# admit -------------------------------------------------------------------------------

ADMIT = {
    "patient_id": "MRN-0042.a_b",
    "ts": "2026-11-25T11:58:00Z",
    "age": 54,
    "product": "axicabtagene ciloleucel",
    "indication": "DLBCL",
    "infusion_ts": "2026-11-23T09:00:00+01:00",
    "spo2_scale": 2,
}


def test_admit_all_fields():
    assert decode_admit(dumps(ADMIT), NOW) == Admission(
        patient_id="MRN-0042.a_b",
        ts=at("2026-11-25T11:58:00Z"),
        age=54.0,
        product="axicabtagene ciloleucel",
        indication="DLBCL",
        infusion_ts=at("2026-11-23T08:00:00Z"),
        spo2_scale=2,
    )


def test_admit_minimal_and_defaults():
    admission = decode_admit(dumps({"patient_id": "P1", "ts": NOW, "age": None}), NOW)
    assert admission == Admission(patient_id="P1", ts=NOW)
    assert admission.spo2_scale == 1


@pytest.mark.parametrize(
    "infusion_ts", [NOW - 59 * 86400, NOW + 1.5 * 86400, "2026-11-26T18:00:00Z"]
)
def test_admit_infusion_window_accepts(infusion_ts):
    admission = decode_admit(dumps({**ADMIT, "infusion_ts": infusion_ts}), NOW)
    assert admission.infusion_ts is not None


ADMIT_REJECTED = [
    ({"patient_id": None}, "patient_id: expected 1-64 characters"),
    ({"patient_id": ""}, "patient_id: expected 1-64 characters"),
    ({"patient_id": "x" * 65}, "patient_id: expected 1-64 characters"),
    ({"patient_id": "Jane Doe"}, "patient_id: expected 1-64 characters"),
    ({"patient_id": "P1\n"}, "patient_id: expected 1-64 characters"),
    ({"patient_id": 42}, "patient_id: expected 1-64 characters"),
    ({"ts": None}, "ts: missing"),
    ({"ts": "2026-11-25T11:58:00"}, "ts: ISO 8601 time without a zone"),
    ({"ts": NOW + 3600}, "3600 s in the future (limit 300 s)"),
    ({"age": -1}, "age: -1 is outside 0-120"),
    ({"age": 121}, "age: 121 is outside 0-120"),
    ({"age": True}, "age: expected a number, got a boolean"),
    ({"age": "54"}, "age: expected a number, got a string"),
    ({"spo2_scale": 3}, "spo2_scale: expected 1 or 2"),
    ({"spo2_scale": True}, "spo2_scale: expected 1 or 2"),
    ({"spo2_scale": "2"}, "spo2_scale: expected 1 or 2"),
    ({"product": "x" * 101}, "product: longer than 100 characters"),
    ({"product": 7}, "product: expected a string, got a number"),
    ({"indication": "a\x00b"}, "indication: contains control characters"),
    ({"infusion_ts": NOW - 61 * 86400}, "infusion_ts: 2026-09-25T12:00:00.000Z is 5270400 s in"),
    (
        {"infusion_ts": NOW + 3 * 86400},
        "infusion_ts: 2026-11-28T12:00:00.000Z is 259200 s in the f",
    ),
    ({"infusion_ts": "soon"}, "infusion_ts: not an ISO 8601 time"),
    ({"bed": "3"}, "unknown field 'bed'"),
]


@pytest.mark.parametrize(("change", "reason"), ADMIT_REJECTED)
def test_admit_rejected(change, reason):
    assert reason in rejected(decode_admit, dumps({**ADMIT, **change}), NOW)


def test_admit_rejected_shapes_and_no_patient_data_in_reason():
    assert rejected(decode_admit, b"[]", NOW) == "expected a JSON object, got an array"
    assert "payload is not valid JSON" in rejected(decode_admit, b"{", NOW)
    reason = rejected(decode_admit, dumps({**ADMIT, "patient_id": "Jane Doe"}), NOW)
    assert "Jane" not in reason


# discharge ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"  \r\n", b"{}", b'{"ts": null}'])
def test_discharge_now(payload):
    assert decode_discharge(payload, NOW) == Discharge(ts=NOW)


def test_discharge_with_fields():
    payload = dumps({"ts": "2026-11-25T11:00:00Z", "patient_id": "MRN-0042"})
    assert decode_discharge(payload, NOW) == Discharge(ts=NOW - 3600, patient_id="MRN-0042")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", "expected a JSON object, got an array"),
        (b"discharge", "payload is not valid JSON"),
        (dumps({"patient_id": "a b"}), "patient_id: expected 1-64 characters"),
        (dumps({"ts": NOW + 3600}), "3600 s in the future (limit 300 s)"),
        (dumps({"ts": "2026-11-25T11:00:00"}), "ts: ISO 8601 time without a zone"),
        (dumps({"reason": "home"}), "unknown field 'reason'"),
    ],
)
def test_discharge_rejected(payload, reason):
    assert reason in rejected(decode_discharge, payload, NOW)


# care events -------------------------------------------------------------------------

T = "2026-11-25T11:59:00Z"


@pytest.mark.parametrize(
    ("event", "kind", "data"),
    [
        (
            {"type": "oxygen", "device": "nasal_cannula", "flow_lpm": 4},
            "oxygen",
            {"device": "nasal_cannula", "flow_lpm": 4.0},
        ),
        (
            {"type": "Oxygen", "device": "Non-Rebreather", "flow_lpm": 15, "fio2": None},
            "oxygen",
            {"device": "non_rebreather", "flow_lpm": 15.0},
        ),
        (
            {"type": "oxygen", "device": "hfnc", "flow_lpm": 40, "fio2": 0.6},
            "oxygen",
            {"device": "hfnc", "flow_lpm": 40.0, "fio2": 0.6},
        ),
        ({"type": "oxygen", "device": "room_air"}, "oxygen", {"device": "room_air"}),
        (
            {"type": "vasopressor", "drug": " Norepinephrine ", "action": "START", "dose": 0.05},
            "vasopressor",
            {"drug": "norepinephrine", "action": "start", "dose": 0.05},
        ),
        (
            {"type": "vasopressor", "drug": "vasopressin", "action": "stop"},
            "vasopressor",
            {"drug": "vasopressin", "action": "stop"},
        ),
        (
            {"type": "medication", "drug": "Tocilizumab"},
            "medication",
            {"drug": "tocilizumab"},
        ),
        (
            {"type": "medication", "drug": "dexamethasone", "dose": 10},
            "medication",
            {"drug": "dexamethasone", "dose": 10.0},
        ),
        (
            {
                "type": "neuro",
                "ice_score": 7,
                "acvpu": "v",
                "seizure": True,
                "seizure_prolonged": False,
                "motor_weakness": False,
                "cerebral_edema": "Focal",
            },
            "neuro",
            {
                "ice_score": 7,
                "acvpu": "V",
                "seizure": True,
                "seizure_prolonged": False,
                "motor_weakness": False,
                "cerebral_edema": "focal",
            },
        ),
        ({"type": "neuro", "ice_score": 10.0}, "neuro", {"ice_score": 10}),
        ({"type": "neuro", "cerebral_edema": None}, "neuro", {"cerebral_edema": None}),
        ({"type": "neuro", "seizure_prolonged": True}, "neuro", {"seizure_prolonged": True}),
    ],
)
def test_care_events(event, kind, data):
    care = decode_care(dumps({"ts": T, **event}), NOW)
    assert care == CareEvent(ts=at(T), type=kind, data=data)
    assert type(care.data.get("ice_score", 0)) is int


CARE_REJECTED = [
    ({"type": "bath"}, "type: unknown care event type (expected oxygen, vasopressor"),
    ({"type": None}, "type: expected a string, got null"),
    ({"type": 3}, "type: expected a string, got a number"),
    ({"type": "oxygen"}, "device: expected a string, got null"),
    ({"type": "oxygen", "device": "helmet"}, "device: unknown oxygen device"),
    ({"type": "oxygen", "device": "hfnc", "flow_lpm": 90}, "flow_lpm: 90 is outside 0-80"),
    ({"type": "oxygen", "device": "hfnc", "flow_lpm": -1}, "flow_lpm: -1 is outside 0-80"),
    ({"type": "oxygen", "device": "hfnc", "flow_lpm": True}, "flow_lpm: expected a number"),
    ({"type": "oxygen", "device": "venturi", "fio2": 40}, "fio2: 40 is outside 0.21-1 (a fract"),
    ({"type": "oxygen", "device": "venturi", "fio2": 0.1}, "fio2: 0.1 is outside 0.21-1"),
    ({"type": "oxygen", "device": "room_air", "flow_lpm": 2}, "room_air: no oxygen flow"),
    ({"type": "oxygen", "device": "nasal_cannula", "flow": 2}, "unknown field 'flow'"),
    ({"type": "vasopressor", "action": "start"}, "drug: expected a string, got null"),
    ({"type": "vasopressor", "drug": "  ", "action": "start"}, "drug: empty"),
    ({"type": "vasopressor", "drug": "x" * 101, "action": "start"}, "drug: longer than 100"),
    ({"type": "vasopressor", "drug": "dopamine"}, "action: expected 'start' or 'stop'"),
    ({"type": "vasopressor", "drug": "dopamine", "action": "pause"}, "action: expected 'start'"),
    (
        {"type": "vasopressor", "drug": "dopamine", "action": "start", "dose": -1},
        "dose: must not be negative",
    ),
    ({"type": "medication", "drug": 5}, "drug: expected a string, got a number"),
    ({"type": "medication"}, "drug: expected a string, got null"),
    ({"type": "neuro"}, "neuro: no assessment in event"),
    ({"type": "neuro", "ice_score": None}, "neuro: no assessment in event"),
    ({"type": "neuro", "ice_score": 11}, "ice_score: expected a whole number 0-10"),
    ({"type": "neuro", "ice_score": 7.5}, "ice_score: expected a whole number 0-10"),
    ({"type": "neuro", "ice_score": True}, "ice_score: expected a number, got a boolean"),
    ({"type": "neuro", "acvpu": "Z"}, "acvpu: expected one of A, C, V, P, U"),
    ({"type": "neuro", "seizure": "yes"}, "seizure: expected true or false, got a string"),
    ({"type": "neuro", "motor_weakness": 0}, "motor_weakness: expected true or false"),
    ({"type": "neuro", "cerebral_edema": "severe"}, "cerebral_edema: expected null, 'focal'"),
    (
        {"type": "neuro", "seizure": False, "seizure_prolonged": True},
        "seizure_prolonged: true while seizure is false",
    ),
    ({"type": "neuro", "ice": 9}, "unknown field 'ice'"),
]


@pytest.mark.parametrize(("event", "reason"), CARE_REJECTED)
def test_care_rejected(event, reason):
    assert reason in rejected(decode_care, dumps({"ts": T, **event}), NOW)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (dumps({"type": "medication", "drug": "tocilizumab"}), "ts: missing"),
        (
            dumps({"ts": NOW + 3600, "type": "medication", "drug": "tocilizumab"}),
            "3600 s in the future (limit 300 s)",
        ),
        (b"[]", "expected a JSON object, got an array"),
        (b"{", "payload is not valid JSON"),
    ],
)
def test_care_rejected_time_and_shape(payload, reason):
    assert reason in rejected(decode_care, payload, NOW)


# device ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "state"),
    [
        (b"online", "online"),
        (b"OFFLINE\n", "offline"),
        (b'"online"', "online"),
        (b'{"state": "offline"}', "offline"),
        (b'{"state": "Online", "ts": "2026-11-25T11:59:00Z", "firmware": "4.2"}', "online"),
    ],
)
def test_device(payload, state):
    assert decode_device(payload) == DeviceStatus(state=state)


@pytest.mark.parametrize(
    "payload", [b"", b"on", b"1", b"[]", b'{"state": 1}', b'{"status": "online"}', b"\xff\xfe"]
)
def test_device_rejected(payload):
    with pytest.raises(R) as info:
        decode_device(payload)
    assert info.value.reason.startswith("device:") or "JSON" in info.value.reason


def test_device_invalid_json_is_rejected():
    with pytest.raises(R, match="payload is not valid JSON"):
        decode_device(b'{"state": ')


# fuzz --------------------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2026-11-25T11:59:00Z", "2026-11-25T11:59:00", "online", "A", "hfnc"])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "ts",
        "type",
        "device",
        "drug",
        "action",
        "dose",
        "state",
        "patient_id",
        "age",
        "infusion_ts",
        "spo2_scale",
        "product",
        "ice_score",
        "seizure",
        "cerebral_edema",
        *VITALS,
    ]
)
SHAPED = st.dictionaries(KEYS, JSON_VALUES, max_size=8) | st.lists(
    st.dictionaries(KEYS, JSON_VALUES, max_size=6), max_size=4
)
JSON_TARGETS = (fuzz_vitals, fuzz_admit, fuzz_discharge, fuzz_care, fuzz_device)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data):
    for target in JSON_TARGETS:
        target(data)


@settings(max_examples=300)
@given(st.one_of(JSON_VALUES, SHAPED))
def test_fuzz_json_of_wrong_shapes(value):
    data = json.dumps(value).encode()  # json, not orjson: integers beyond 64 bits too
    for target in JSON_TARGETS:
        target(data)


@settings(max_examples=300)
@given(st.data())
def test_fuzz_mutated_valid_messages(data):
    target = data.draw(st.sampled_from(JSON_TARGETS))
    seed = data.draw(st.sampled_from([s for s in seeds()[target] if s[:1] in (b"{", b"[")]))
    doc = orjson.loads(seed)
    path = data.draw(st.sampled_from(json_paths(doc)))
    target(json.dumps(replace_at(doc, path, data.draw(JSON_VALUES))).encode())
