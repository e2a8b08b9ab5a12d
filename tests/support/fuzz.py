"""Fuzz targets for the decoders: every input either decodes or raises `Rejected`.

Each `fuzz_*` target takes raw bytes, and checks what a decoder returns (times inside the
window, values inside their ranges, oldest first). `fuzz_one(data)` picks a target with
the first byte and feeds it the rest, so one long-running fuzzer covers all of them:

    python tests/support/fuzz.py 600          # 10 minutes of seeded random mutations

The mutation helpers are shared with the hypothesis tests (tests/test_decode_*.py).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson

from devices.encode import to_fhir, to_hl7, to_json
from monitor.ingest.decode_fhir import decode_fhir
from monitor.ingest.decode_hl7 import decode_hl7
from monitor.ingest.decode_json import (
    decode_admit,
    decode_care,
    decode_device,
    decode_discharge,
    decode_vitals,
)
from monitor.ingest.messages import (
    VITAL_RANGES,
    Admission,
    CareEvent,
    DeviceStatus,
    Discharge,
    Observation,
    Rejected,
)

NOW = 1795608000.0  # 2026-11-25T12:00:00Z
MAX_FUTURE_S = 300.0
MAX_PAST_S = 14 * 86400.0


def check_observations(result: object) -> None:
    """What every Observation list out of a decoder must satisfy."""
    assert isinstance(result, list) and result, result
    times = [o.ts for o in result]
    assert times == sorted(set(times)), times
    for obs in result:
        assert isinstance(obs, Observation)
        assert math.isfinite(obs.ts) and -MAX_PAST_S <= obs.ts - NOW <= MAX_FUTURE_S
        assert obs.values
        for name, value in obs.values.items():
            if name == "acvpu":
                assert value in ("A", "C", "V", "P", "U")
            else:
                low, high, _ = VITAL_RANGES[name]
                assert isinstance(value, float) and low <= value <= high, (name, value)


def _run(decode: Callable[[bytes], Any], data: bytes) -> Any:
    try:
        return decode(data)
    except Rejected as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return None


def fuzz_vitals(data: bytes) -> None:
    result = _run(lambda d: decode_vitals(d, NOW), data)
    if result is not None:
        check_observations(result)


def fuzz_fhir(data: bytes) -> None:
    result = _run(lambda d: decode_fhir(d, NOW), data)
    if result is not None:
        check_observations(result)


def fuzz_hl7(data: bytes) -> None:
    result = _run(lambda d: decode_hl7(d, NOW), data)
    if result is not None:
        check_observations(result)


def fuzz_admit(data: bytes) -> None:
    result = _run(lambda d: decode_admit(d, NOW), data)
    assert result is None or isinstance(result, Admission)


def fuzz_discharge(data: bytes) -> None:
    result = _run(lambda d: decode_discharge(d, NOW), data)
    assert result is None or isinstance(result, Discharge)


def fuzz_care(data: bytes) -> None:
    result = _run(lambda d: decode_care(d, NOW), data)
    assert result is None or isinstance(result, CareEvent)


def fuzz_device(data: bytes) -> None:
    result = _run(decode_device, data)
    assert result is None or (
        isinstance(result, DeviceStatus) and result.state in ("online", "offline")
    )


TARGETS: tuple[Callable[[bytes], None], ...] = (
    fuzz_vitals,
    fuzz_fhir,
    fuzz_hl7,
    fuzz_admit,
    fuzz_discharge,
    fuzz_care,
    fuzz_device,
)


def fuzz_one(data: bytes) -> None:
    """The single entry point: data[0] chooses the target, data[1:] is its input."""
    if data:
        TARGETS[data[0] % len(TARGETS)](data[1:])


# Seeds and mutations ------------------------------------------------------------------

_SEED_OBS = [
    Observation(NOW - 60, {"hr": 112.0, "rr": 22.0, "spo2": 93.0, "temp_c": 38.4, "acvpu": "A"}),
    Observation(NOW - 30, {"sbp": 96.0, "dbp": 58.0, "map": 70.0, "fio2": 0.4, "o2_flow_lpm": 3.0}),
]


def seeds() -> dict[Callable[[bytes], None], list[bytes]]:
    """Valid messages per target, to start mutations from."""
    stamp = "2026-11-25T11:59:00Z"
    return {
        fuzz_vitals: [to_json(_SEED_OBS)],
        fuzz_fhir: [to_fhir(_SEED_OBS, "P-001")],
        fuzz_hl7: [to_hl7(_SEED_OBS, "P-001", "W7", "B3", "MSG-1")],
        fuzz_admit: [
            orjson.dumps(
                {
                    "patient_id": "P-001",
                    "ts": stamp,
                    "age": 54,
                    "product": "axi-cel",
                    "indication": "DLBCL",
                    "infusion_ts": "2026-11-23T09:00:00Z",
                    "spo2_scale": 1,
                }
            )
        ],
        fuzz_discharge: [b"", orjson.dumps({"ts": stamp, "patient_id": "P-001"})],
        fuzz_care: [
            orjson.dumps({"ts": stamp, "type": "oxygen", "device": "nasal_cannula", "flow_lpm": 4}),
            orjson.dumps(
                {
                    "ts": stamp,
                    "type": "vasopressor",
                    "drug": "norepinephrine",
                    "action": "start",
                    "dose": 0.05,
                }
            ),
            orjson.dumps({"ts": stamp, "type": "medication", "drug": "tocilizumab"}),
            orjson.dumps(
                {
                    "ts": stamp,
                    "type": "neuro",
                    "ice_score": 8,
                    "acvpu": "A",
                    "seizure": False,
                    "motor_weakness": False,
                    "cerebral_edema": None,
                }
            ),
        ],
        fuzz_device: [b"online", b'{"state": "offline"}'],
    }


def json_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) inside a JSON document, the root included."""
    paths = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            paths += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            paths += json_paths(value, (*prefix, i))
    return paths


def replace_at(doc: Any, path: tuple, new: Any) -> Any:
    """A copy of `doc` with the value at `path` replaced by `new`."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: replace_at(doc[head], rest, new)}
    copy = list(doc)
    copy[head] = replace_at(doc[head], rest, new)
    return copy


def mutate_hl7(message: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    """Replace field `f` of segment `s` (both modulo what exists) with `text`, per edit."""
    segments = message.decode("utf-8").split("\r")
    for s, f, text in edits:
        fields = segments[s % len(segments)].split("|")
        index = f % (len(fields) + 2)
        fields += [""] * (index + 1 - len(fields))
        fields[index] = text
        segments[s % len(segments)] = "|".join(fields)
    return "\r".join(segments).encode("utf-8", "surrogatepass")


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            del buf[pos % len(buf)]
        elif op == 1:
            buf.insert(pos, rng.choice(b'|^~\\&\r\n{}[]":,0123456789.-+eE ZTx\x00\xff'))
        elif op == 2 and buf:
            buf[pos % len(buf)] = rng.randrange(256)
        else:
            start = rng.randrange(len(buf) + 1)
            buf[pos:pos] = buf[start : start + rng.randint(1, 16)]
    return bytes(buf)


def main(seconds: float) -> int:
    """Seeded random mutations of valid messages, for `seconds`."""
    rng = random.Random(0)
    corpus = seeds()
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        target = rng.choice(TARGETS)
        data = _mutate_bytes(rng.choice(corpus[target]), rng)
        try:
            target(data)
        except Exception:
            print(f"{target.__name__} failed on {data!r}", file=sys.stderr)
            raise
        count += 1
    print(f"{count} inputs, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0))
