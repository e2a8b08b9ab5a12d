"""The fuzzing engine: targets, mutators and runners. `benchmarks/fuzz.py` is its CLI, the long
run (not in CI); tests/test_fuzz.py runs the same targets for a few seconds.

    .venv/bin/python benchmarks/fuzz.py --seconds 600 [--engine auto|atheris|random]
                                        [--seed 0] [--crash-dir fuzz-crashes]

Targets: the seven decoders (JSON vitals, FHIR, HL7 v2, admit, discharge, care, device)
and `monitor.ingest.route.Router.route(topic, payload, now)`, fed random topics and payloads. A
decoder must return what it promises (tests/support/fuzz.py checks the observations:
times inside the window, values inside their ranges, oldest first) or raise `Rejected`
with a reason. The router must return an Item: accepted (its ward and bed from the topic,
its body decoded), or a rejection with a reason, never "internal error" (what the router
says when a decoder raised something else than `Rejected`).

Inputs: seeded mutations of real-shaped messages (the encoders' own output): byte-level
mutations, structure-aware ones (a JSON value replaced, removed, added, wrapped; an HL7
field, component or segment changed), splices of two messages, and random bytes.
Inputs a target accepts join its corpus, so mutations go on from valid messages.

Engines: `random` (the mutations above, with Python's seeded random) and `atheris`
(coverage-guided libFuzzer, when `pip install atheris` works: the same targets, the
fuzzer's bytes either fed raw or used to drive the structure-aware mutations). `auto`
takes atheris when it imports.

It prints, per target, how many inputs it tried, accepted and rejected, the slowest input,
and every crash, each saved to the crash folder (`<target>-<hash>.json`, with the input,
the exception and the traceback). Exit status 1 when anything crashed, 0 otherwise.
`--replay FILE` runs a saved input again (a router input on a fresh router: a crash that
needed an earlier message of the run, an admission say, may need it sent first).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from monitor.ingest.admissions import Admissions, admission_id
from monitor.ingest.decode_fhir import decode_fhir
from monitor.ingest.decode_hl7 import decode_hl7
from monitor.ingest.decode_json import (
    decode_admit,
    decode_care,
    decode_device,
    decode_discharge,
    decode_vitals,
)
from monitor.ingest.items import AdmissionRecord, Item
from monitor.ingest.messages import (
    Admission,
    CareEvent,
    DeviceStatus,
    Discharge,
    Rejected,
)
from monitor.ingest.route import INBOUND, NAME, Router
from tests.support import fuzz as ft

ROOT = Path(__file__).resolve().parents[2]
NOW = ft.NOW
PREFIX = "crs"
MAX_BYTES = 262144  # ingest.max_message_bytes
# Beds the router starts with a patient in, admitted a day before NOW.
ADMITTED = (("w1", "b1"), ("w1", "b2"), ("ICU-3", "bed_12"))


# -- the router target ---------------------------------------------------------------


def new_router() -> Router:
    admissions = Admissions()
    for ward, bed in ADMITTED:
        a = Admission(patient_id=f"P-{bed}", ts=NOW - 86400, infusion_ts=NOW - 2 * 86400)
        admissions.admit(AdmissionRecord(admission_id(ward, bed, a), ward, bed, a))
    return Router(
        PREFIX,
        admissions,
        max_bytes=MAX_BYTES,
        max_future_s=ft.MAX_FUTURE_S,
        max_past_s=ft.MAX_PAST_S,
    )


ITEM_KINDS = frozenset({"reject", "duplicate", "vitals", "care", "admit", "discharge", "device"})


def check_route(router: Router, topic: str, payload: bytes, now: float = NOW) -> Item:
    """Route one message and check the Item; an AssertionError is a crash."""
    item = router.route(topic, payload, now)
    assert isinstance(item, Item), type(item)
    assert item.topic == topic and item.received_ts == now
    assert item.kind in ITEM_KINDS, item.kind
    if item.kind == "reject":
        assert isinstance(item.reason, str) and item.reason
        assert not item.reason.startswith("internal error"), item.reason  # a decoder bug
        assert item.payload == payload  # stored with the rejection
        return item
    parts = topic.split("/")
    assert len(parts) == 4 and parts[0] == router.prefix and parts[3] in INBOUND, topic
    assert (item.ward, item.bed) == (parts[1], parts[2])
    assert NAME.match(item.ward) and NAME.match(item.bed)
    assert len(payload) <= router.max_bytes and item.payload == b""
    rec = item.record
    kind = item.kind
    if kind != "device":
        assert isinstance(rec, AdmissionRecord) and (rec.ward, rec.bed) == (item.ward, item.bed)
    if kind == "vitals":
        assert parts[3] in ("vitals", "fhir", "hl7") and item.source
        ft.check_observations(item.body)
        assert item.body[0].ts >= rec.admission.ts
        assert router.admissions.get(item.ward, item.bed) is rec
    elif kind == "care":
        assert isinstance(item.body, CareEvent) and item.body.ts >= rec.admission.ts
        assert router.admissions.get(item.ward, item.bed) is rec
    elif kind == "admit":
        assert isinstance(item.body, Admission) and rec.admission is item.body
        assert router.admissions.get(item.ward, item.bed) is rec
    elif kind == "discharge":
        assert isinstance(item.body, Discharge) and rec.discharged_ts == item.body.ts
        assert item.body.ts >= rec.admission.ts
        assert router.admissions.get(item.ward, item.bed) is None
    elif kind == "device":
        assert isinstance(item.body, DeviceStatus)
    return item


# -- targets -------------------------------------------------------------------------


def _decoder(decode: Callable[[bytes], Any], check: Callable[[Any], None]):
    def run(data: bytes) -> bool:
        """True when accepted, False when rejected (with a reason)."""
        try:
            result = decode(data)
        except Rejected as exc:
            assert isinstance(exc.reason, str) and exc.reason
            return False
        check(result)
        return True

    return run


def _is(kind):
    def check(result):
        assert isinstance(result, kind), result

    return check


def _device(result):
    assert isinstance(result, DeviceStatus) and result.state in ("online", "offline")


DECODERS: dict[str, Callable[[bytes], bool]] = {
    "vitals": _decoder(lambda d: decode_vitals(d, NOW), ft.check_observations),
    "fhir": _decoder(lambda d: decode_fhir(d, NOW), ft.check_observations),
    "hl7": _decoder(lambda d: decode_hl7(d, NOW), ft.check_observations),
    "admit": _decoder(lambda d: decode_admit(d, NOW), _is(Admission)),
    "discharge": _decoder(lambda d: decode_discharge(d, NOW), _is(Discharge)),
    "care": _decoder(lambda d: decode_care(d, NOW), _is(CareEvent)),
    "device": _decoder(decode_device, _device),
}
_SEED_TARGETS = {
    "vitals": ft.fuzz_vitals,
    "fhir": ft.fuzz_fhir,
    "hl7": ft.fuzz_hl7,
    "admit": ft.fuzz_admit,
    "discharge": ft.fuzz_discharge,
    "care": ft.fuzz_care,
    "device": ft.fuzz_device,
}
SEEDS: dict[str, list[bytes]] = {name: list(ft.seeds()[t]) for name, t in _SEED_TARGETS.items()}
JSON_KINDS = ("vitals", "fhir", "admit", "discharge", "care")
KIND_OF_TOPIC = {
    "vitals": "vitals",
    "fhir": "fhir",
    "hl7": "hl7",
    "admit": "admit",
    "discharge": "discharge",
    "care": "care",
    "device": "device",
}


# -- generators: every one takes an rng with randrange, randint, choice and random ----------
# (random.Random, hypothesis' st.randoms(), or BytesRandom below for atheris)

INTERESTING_NUMBERS = (
    0,
    -1,
    1,
    2,
    0.5,
    -0.0,
    14.5,
    37.0,
    38.0,
    38.4,
    45.0,
    45.0001,
    24.999,
    25,
    60,
    80,
    90,
    100,
    100.5,
    120,
    300,
    300.0001,
    0.21,
    0.2,
    1.0,
    1.01,
    10,
    64,
    65,
    1e15,
    1e15 + 2,
    2**53 + 1,
    2**63,
    2**64,
    -(2**63),
    10**30,
    1e308,
    -1e308,
    5e-324,
    NOW,
    NOW - 60,
    NOW + 300,
    NOW + 301,
    NOW - 14 * 86400,
    NOW - 14 * 86400 - 1,
    NOW - 86400 - 1,
    NOW * 1000,
    1e12,
    -62135596800,
    253402300800,
)
INTERESTING_STRINGS = (
    "",
    " ",
    "A",
    "a",
    " a ",
    "c",
    "V",
    "P",
    "U",
    "X",
    "online",
    "offline",
    "OFFLINE",
    "null",
    "true",
    "NaN",
    "Infinity",
    "1e999",
    "38.4",
    "0x10",
    "2026-11-25T11:59:00Z",
    "2026-11-25T11:59:00",
    "2026-11-25T11:59:00+14:00",
    "2026-11-25T11:59:00-23:59",
    "2026-11-25T11:59:00.123456Z",
    "2026-11-25",
    "2026-11-25 11:59Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-23:59",
    "2026-13-45T25:61:61Z",
    "2026-W48-3T12:00Z",
    "20261125T115900Z",
    "oxygen",
    "vasopressor",
    "medication",
    "neuro",
    "room_air",
    "nasal_cannula",
    "hfnc",
    "ventilator",
    "norepinephrine",
    "vasopressin",
    "start",
    "stop",
    "tocilizumab",
    "Dexamethasone",
    "focal",
    "diffuse",
    "Observation",
    "Bundle",
    "collection",
    "final",
    "amended",
    "preliminary",
    "entered-in-error",
    "cancelled",
    "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.1",
    "http://unitsofmeasure.org",
    "8867-4",
    "9279-1",
    "59408-5",
    "8310-5",
    "8480-6",
    "8462-4",
    "8478-0",
    "85354-9",
    "3150-0",
    "3151-8",
    "/min",
    "{beats}/min",
    "Cel",
    "[degF]",
    "degF",
    "%",
    "mm[Hg]",
    "L/min",
    "1",
    "\u0000",
    "\ud800",
    "é",
    "😀",
    "x" * 300,
    "P-001",
    "P1",
    "../../etc/passwd",
    "'; DROP TABLE observations;--",
)
FIELD_NAMES = (
    "ts",
    "hr",
    "rr",
    "spo2",
    "sbp",
    "dbp",
    "map",
    "temp_c",
    "acvpu",
    "fio2",
    "o2_flow_lpm",
    "patient_id",
    "age",
    "product",
    "indication",
    "infusion_ts",
    "spo2_scale",
    "type",
    "device",
    "flow_lpm",
    "drug",
    "action",
    "dose",
    "ice_score",
    "seizure",
    "seizure_prolonged",
    "motor_weakness",
    "cerebral_edema",
    "state",
    "resourceType",
    "status",
    "code",
    "coding",
    "system",
    "value",
    "valueQuantity",
    "unit",
    "component",
    "effectiveDateTime",
    "effectivePeriod",
    "start",
    "end",
    "entry",
    "resource",
    "dataAbsentReason",
    "subject",
    "category",
    "issued",
    "HR",
    "temp",
    "spo2 ",
)
HL7_VALUES = (
    "",
    "NM",
    "ST",
    "CWE",
    "SN",
    "NA",
    "F",
    "R",
    "C",
    "P",
    "X",
    "D",
    "W",
    "Z",
    "-999",
    "8388607",
    "-8388608",
    "8388606",
    "-8388606",
    "1e400",
    "112",
    "112.0",
    "-1",
    "0",
    "45.1",
    "38.4",
    "+37",
    "1,5",
    ".5",
    "5.",
    "NaN",
    "inf",
    "147842^MDC_ECG_HEART_RATE^MDC",
    "149530^MDC_PULS_OXIM_PULS_RATE^MDC",
    "150456^MDC_PULS_OXIM_SAT_O2^MDC",
    "150344^MDC_TEMP^MDC",
    "151562^MDC_RESP_RATE^MDC",
    "150301^MDC_PRESS_CUFF_SYS^MDC",
    "150033^MDC_PRESS_BLD_ART_ABP_SYS^MDC",
    "152196^MDC_CONC_AWAY_O2_INSP^MDC",
    "150301^MDC_TEMP^MDC",
    "999999^MDC_UNKNOWN^MDC",
    "8867-4^Heart rate^LN",
    "8310-5^Body temperature^LN",
    "8480-6^^LOINC",
    "264864^MDC_DIM_BEAT_PER_MIN^MDC",
    "262688^MDC_DIM_PERCENT^MDC",
    "268192^MDC_DIM_DEGC^MDC",
    "266560^MDC_DIM_FAHR^MDC",
    "266016^MDC_DIM_MMHG^MDC",
    "262144^MDC_DIM_DIMLESS^MDC",
    "%",
    "Cel",
    "[degF]",
    "mm[Hg]",
    "/min",
    "bpm",
    "20261125115900+0000",
    "20261125115900",
    "202611251159+0100",
    "2026112511",
    "20261125115900.1234+0000",
    "20261125115900.12345+0000",
    "99991231235959+1400",
    "00000000000000+0000",
    "20261125115900+9999",
    "20261125115900-2400",
    "ORU^R01",
    "ORU^R01^ORU_R01",
    "ADT^A01",
    "ORU",
    "^~\\&",
    "^~\\&#",
    "^",
    "",
    "\\F\\",
    "\\S\\",
    "\\E\\",
    "2.6",
    "1.1.1.1",
    "MSH",
    "OBX",
    "OBR",
    "PID",
    "\x0b",
    "\x1c",
)


def random_bytes(rng, max_len: int = 256) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(max_len + 1)))


def random_text(rng, max_len: int = 24) -> str:
    alphabet = 'abcAZ09_-./+#$ :"{}[]|^~\\&\r\n\t\x00é😀\ud800'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(max_len + 1)))


def random_json(rng, depth: int = 0) -> Any:
    r = rng.randrange(12 if depth < 3 else 9)
    if r == 0:
        return None
    if r == 1:
        return rng.choice((True, False))
    if r in (2, 3):
        return rng.choice(INTERESTING_NUMBERS)
    if r == 4:
        return rng.randint(-(10**6), 10**6) / rng.choice((1, 10, 1000))
    if r in (5, 6):
        return rng.choice(INTERESTING_STRINGS)
    if r == 7:
        return random_text(rng)
    if r == 8:
        return rng.choice((float("nan"), float("inf"), -float("inf"), 10**400))
    if r == 9:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELD_NAMES): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def _get_at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _delete_at(doc: Any, path: tuple) -> Any:
    parent = _get_at(doc, path[:-1])
    if isinstance(parent, dict):
        new = {k: v for k, v in parent.items() if k != path[-1]}
    else:
        new = [v for i, v in enumerate(parent) if i != path[-1]]
    return ft.replace_at(doc, path[:-1], new)


def mutate_json(rng, doc: Any) -> Any:
    """One to four structure-aware edits of a JSON document."""
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(ft.json_paths(doc))
        value = _get_at(doc, path)
        op = rng.randrange(8)
        if op in (0, 1):  # another value of any type
            doc = ft.replace_at(doc, path, random_json(rng))
        elif op == 2 and path:  # a field or element removed
            doc = _delete_at(doc, path)
        elif op == 3 and isinstance(value, dict):  # a field added (known names mostly)
            doc = ft.replace_at(doc, path, {**value, rng.choice(FIELD_NAMES): random_json(rng)})
        elif op == 4 and isinstance(value, list) and value:  # an element repeated
            doc = ft.replace_at(doc, path, [*value, rng.choice(value)])
        elif op == 5:  # wrapped
            doc = ft.replace_at(doc, path, rng.choice(([value], {"value": value})))
        elif op == 6 and isinstance(value, int | float) and not isinstance(value, bool):
            tenth = value // 10 if isinstance(value, int) else value / 10
            doc = ft.replace_at(
                doc,
                path,
                rng.choice((value + 1, value - 1, -value, value * 10, tenth, str(value), [value])),
            )
        else:  # a number or string from the interesting ones
            pool = INTERESTING_NUMBERS if rng.randrange(2) else INTERESTING_STRINGS
            doc = ft.replace_at(doc, path, rng.choice(pool))
    return doc


def dump_json(rng, doc: Any) -> bytes:
    """json, not orjson: NaN, Infinity and integers beyond 64 bits come out too."""
    text = json.dumps(doc, ensure_ascii=bool(rng.randrange(2)))
    return text.encode("utf-8", "surrogatepass")


def mutate_hl7(rng, message: bytes) -> bytes:
    """Field, component and segment edits of an HL7 v2 message."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return ft._mutate_bytes(message, rng)
    for _ in range(rng.randint(1, 4)):
        segments = text.split("\r")
        op = rng.randrange(7)
        if op <= 2:  # a field replaced (or added past the last one)
            s = rng.randrange(len(segments))
            fields = segments[s].split("|")
            f = rng.randrange(len(fields) + 2)
            fields += [""] * (f + 1 - len(fields))
            fields[f] = rng.choice(HL7_VALUES) if rng.randrange(4) else random_text(rng)
            segments[s] = "|".join(fields)
        elif op == 3:  # a component replaced inside a field
            s = rng.randrange(len(segments))
            fields = segments[s].split("|")
            f = rng.randrange(len(fields))
            comps = fields[f].split("^")
            comps[rng.randrange(len(comps))] = rng.choice(HL7_VALUES)
            fields[f] = "^".join(comps)
            segments[s] = "|".join(fields)
        elif op == 4 and len(segments) > 1:  # a segment dropped
            del segments[rng.randrange(len(segments))]
        elif op == 5:  # a segment repeated (another OBX, a second MSH...)
            segments.insert(rng.randrange(len(segments) + 1), rng.choice(segments))
        else:  # segment separators of other senders, MLLP framing
            sep = rng.choice(("\n", "\r\n", "\r\r", "\x0b", "\x1c\r", ""))
            return (
                rng.choice(("", "\x0b")).encode()
                + sep.join(segments).encode("utf-8", "surrogatepass")
                + rng.choice((b"", b"\x1c\r", b"\r"))
            )
        text = "\r".join(segments)
    return text.encode("utf-8", "surrogatepass")


def splice(rng, a: bytes, b: bytes) -> bytes:
    return a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1) :]


def generate(rng, kind: str, corpus: list[bytes] | None = None) -> bytes:
    """One input for a decoder of `kind`, from its corpus (the seeds, by default)."""
    pool = corpus or SEEDS[kind]
    base = rng.choice(pool)
    r = rng.randrange(20)
    if r < 2:
        return random_bytes(rng)
    if r < 8:
        data = ft._mutate_bytes(base, rng)
        return ft._mutate_bytes(data, rng) if rng.randrange(4) == 0 else data
    if r < 18:
        if kind in JSON_KINDS:
            try:
                doc = orjson.loads(base)
            except orjson.JSONDecodeError:
                return ft._mutate_bytes(base, rng)
            return dump_json(rng, mutate_json(rng, doc))
        if kind == "hl7":
            return mutate_hl7(rng, base)
        return rng.choice(
            (
                b"online",
                b"offline",
                b" OFFLINE\n",
                b'"online"',
                b'{"state":1}',
                dump_json(rng, random_json(rng)),
                b"\xff",
                b"on\x00line",
            )
        )
    return splice(rng, base, rng.choice(pool + SEEDS[rng.choice(tuple(SEEDS))]))


def random_topic(rng) -> str:
    """Mostly well-formed topics (admitted beds and others, every kind), some not."""
    r = rng.randrange(10)
    if r < 7:
        prefix = PREFIX if rng.randrange(8) else rng.choice(("", "CRS", "crs ", "$share/g/crs"))
        ward, bed = (
            rng.choice(ADMITTED)
            if rng.randrange(3)
            else (
                rng.choice(
                    (
                        "w1",
                        "w9",
                        "ICU-3",
                        "a" * 32,
                        "a" * 33,
                        "",
                        "+",
                        "#",
                        "w 1",
                        "wé",
                        "w\x00",
                        random_text(rng, 8),
                    )
                ),
                rng.choice(
                    ("b1", "b2", "b3", "bed_12", "-", "B" * 33, "", "+", random_text(rng, 8))
                ),
            )
        )
        kind = (
            rng.choice(INBOUND)
            if rng.randrange(6)
            else rng.choice(
                ("state", "alerts", "rejected", "VITALS", "", "vitals/extra", random_text(rng, 6))
            )
        )
        return f"{prefix}/{ward}/{bed}/{kind}"
    if r < 9:
        return "/".join(random_text(rng, 10) for _ in range(rng.randrange(7)))
    topic = f"{PREFIX}/w1/b1/{rng.choice(INBOUND)}".encode()
    return ft._mutate_bytes(topic, rng).decode("utf-8", "replace")


def generate_route(rng, corpus: list[tuple[str, bytes]] | None = None) -> tuple[str, bytes]:
    if corpus and rng.randrange(3) == 0:
        topic, payload = rng.choice(corpus)
        if rng.randrange(2):
            return topic, payload  # again: a redelivery is a duplicate, or a conflict
        kind = KIND_OF_TOPIC.get(topic.rsplit("/", 1)[-1])
        return topic, generate(rng, kind) if kind else random_bytes(rng)
    topic = random_topic(rng)
    kind = KIND_OF_TOPIC.get(topic.rsplit("/", 1)[-1])
    r = rng.randrange(20)
    if r == 0:
        return topic, b"[" * (MAX_BYTES + rng.randrange(2))  # the size limit, both sides
    if kind is None or r == 1:
        return topic, generate(rng, rng.choice(tuple(SEEDS)))
    if r < 6:
        return topic, rng.choice(SEEDS[kind])
    return topic, generate(rng, kind)


# -- the run -------------------------------------------------------------------------


@dataclass
class Stats:
    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: int = 0
    slowest: float = 0.0


@dataclass
class Target:
    """`generate(rng)` an input, `run(input)` it: True accepted, False rejected."""

    name: str
    generate: Callable[[Any], Any]
    run: Callable[[Any], bool]
    from_bytes: Callable[[bytes], Any]  # what raw fuzzer bytes become
    corpus: list = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)


def decoder_target(kind: str) -> Target:
    t = Target(
        kind,
        generate=lambda rng: None,
        run=DECODERS[kind],
        from_bytes=bytes,
        corpus=list(SEEDS[kind]),
    )
    t.generate = lambda rng: generate(rng, kind, t.corpus)
    return t


class RouteRunner:
    """The router keeps admissions between messages (an admit, then vitals for the bed):
    a fresh one every `reset` messages keeps runs reproducible and memory flat."""

    def __init__(self, reset: int = 1000):
        self.reset, self.n, self.router = reset, 0, new_router()

    def __call__(self, message: tuple[str, bytes]) -> bool:
        self.n += 1
        if self.n % self.reset == 0:
            self.router = new_router()
        return check_route(self.router, *message).kind != "reject"


def _route_from_bytes(data: bytes) -> tuple[str, bytes]:
    topic, _, payload = data.partition(b"\n")
    return topic.decode("utf-8", "replace"), payload


def route_target() -> Target:
    t = Target("route", generate=lambda rng: None, run=RouteRunner(), from_bytes=_route_from_bytes)
    t.generate = lambda rng: generate_route(rng, t.corpus)
    return t


def all_targets() -> list[Target]:
    return [*(decoder_target(kind) for kind in DECODERS), route_target()]


def save_crash(crash_dir: Path, target: Target, message: Any, exc: BaseException) -> Path:
    topic, payload = message if target.name == "route" else (None, message)
    digest = hashlib.sha1(repr(message).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"{target.name}-{digest}.json"
    path.write_text(
        json.dumps(
            {
                "target": target.name,
                "topic": topic,
                "payload_base64": base64.b64encode(payload).decode(),
                "payload_repr": repr(payload[:2000]),
                "exception": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exception(exc),
            },
            indent=1,
            ensure_ascii=True,
        )
    )
    return path


def load_crash(path: Path) -> tuple[str, Any]:
    """(target name, input) of a saved crash, to replay it."""
    data = json.loads(Path(path).read_text())
    payload = base64.b64decode(data["payload_base64"])
    return data["target"], (data["topic"], payload) if data["target"] == "route" else payload


class Runner:
    def __init__(self, targets: list[Target], crash_dir: Path, out=None):
        self.targets, self.crash_dir = targets, Path(crash_dir)
        self.out = out or sys.stdout
        self.crashes: dict[tuple[str, str], Path] = {}  # (target, where) -> first input

    def one(self, target: Target, message: Any, learn: bool = True) -> None:
        st = target.stats
        st.tried += 1
        started = time.perf_counter()
        try:
            accepted = target.run(message)
        except Exception as exc:  # a crash: anything but Rejected, or a failed check
            st.crashes += 1
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            if (target.name, where) not in self.crashes:
                path = save_crash(self.crash_dir, target, message, exc)
                self.crashes[(target.name, where)] = path
                print(
                    f"CRASH {target.name}: {where}: {str(exc)[:200]} -> {path}",
                    file=self.out,
                    flush=True,
                )
            return
        finally:
            st.slowest = max(st.slowest, time.perf_counter() - started)
        if accepted:
            st.accepted += 1
            if learn and message not in target.corpus:
                if len(target.corpus) < 256:
                    target.corpus.append(message)
                else:
                    target.corpus[hash(message) % 256] = message
        else:
            st.rejected += 1

    def report(self, engine: str, seconds: float) -> int:
        total = sum(t.stats.tried for t in self.targets)
        print(f"\nengine {engine}, {seconds:.0f} s", file=self.out)
        print(
            f"{'target':<10} {'inputs':>10} {'accepted':>10} {'rejected':>10} "
            f"{'crashes':>8} {'slowest':>9}",
            file=self.out,
        )
        for t in self.targets:
            s = t.stats
            print(
                f"{t.name:<10} {s.tried:>10} {s.accepted:>10} {s.rejected:>10} "
                f"{s.crashes:>8} {s.slowest * 1000:>7.1f}ms",
                file=self.out,
            )
        print(
            f"{'total':<10} {total:>10}  ({total / max(seconds, 1e-9):.0f} inputs/s)", file=self.out
        )
        if self.crashes:
            print(
                f"{len(self.crashes)} distinct crash(es), saved in {self.crash_dir}:", file=self.out
            )
            for (name, where), path in self.crashes.items():
                print(f"  {name}: {where} -> {path}", file=self.out)
        else:
            print("no crash", file=self.out)
        self.out.flush()
        return 1 if self.crashes else 0


def run_random(
    runner: Runner, seconds: float, seed: int = 0, max_inputs: int | None = None
) -> float:
    """Round-robin over the targets, seeded; returns the time it ran."""
    rng = random.Random(seed)
    started = time.monotonic()
    deadline = started + seconds
    n = 0
    while time.monotonic() < deadline and (max_inputs is None or n < max_inputs):
        for target in runner.targets:
            runner.one(target, target.generate(rng))
        n += len(runner.targets)
    return time.monotonic() - started


class BytesRandom:
    """The rng interface over atheris' FuzzedDataProvider: the fuzzer's bytes make every
    choice of the structure-aware mutations, so coverage guides them."""

    def __init__(self, fdp):
        self.fdp = fdp

    def randrange(self, n: int) -> int:
        return self.fdp.ConsumeIntInRange(0, n - 1) if n > 1 else 0

    def randint(self, a: int, b: int) -> int:
        return self.fdp.ConsumeIntInRange(a, b) if b > a else a

    def choice(self, seq):
        return seq[self.randrange(len(seq))]

    def random(self) -> float:
        return self.fdp.ConsumeProbability()


def run_atheris(runner: Runner, seconds: float, seed: int) -> None:  # pragma: no cover
    """Coverage-guided; never returns: reports and exits at the deadline."""
    import atheris

    targets = runner.targets
    clock: list[float] = []  # started, deadline: from the first input (after instrumenting)

    def test_one_input(data: bytes) -> None:
        if not clock:
            clock[:] = [time.monotonic(), time.monotonic() + seconds]
        if time.monotonic() >= clock[1]:
            code = runner.report(
                "atheris (libFuzzer, coverage-guided)", time.monotonic() - clock[0]
            )
            sys.stdout.flush()
            os._exit(code)
        fdp = atheris.FuzzedDataProvider(data)
        target = targets[fdp.ConsumeIntInRange(0, len(targets) - 1)]
        if fdp.ConsumeBool():  # raw bytes, as the fuzzer mutates them
            message = target.from_bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
        else:  # the fuzzer's bytes drive the structure-aware mutations
            message = target.generate(BytesRandom(fdp))
        runner.one(target, message, learn=False)

    atheris.instrument_all()
    atheris.Setup(
        [
            sys.argv[0],
            f"-seed={seed or 1}",
            "-rss_limit_mb=4096",
            "-max_len=65536",
            "-timeout=60",
            "-print_final_stats=0",
        ],
        test_one_input,
    )
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=600.0, help="how long (default 600)")
    ap.add_argument(
        "--engine",
        choices=("auto", "atheris", "random"),
        default="auto",
        help="auto: atheris when it imports, else random",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--crash-dir",
        default="fuzz-crashes",
        help="where crashing inputs are saved (default ./fuzz-crashes)",
    )
    ap.add_argument(
        "--replay", metavar="CRASH_JSON", help="run one saved crash again and show its traceback"
    )
    args = ap.parse_args(argv)
    runner = Runner(all_targets(), Path(args.crash_dir))
    if args.replay:
        name, message = load_crash(Path(args.replay))
        target = next(t for t in runner.targets if t.name == name)
        target.run(message)  # raises again if it still crashes
        print(f"{name}: no crash any more")
        return 0
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    print(
        f"fuzzing {', '.join(t.name for t in runner.targets)} for {args.seconds:.0f} s "
        f"({engine}, seed {args.seed}); crashes go to {args.crash_dir}/",
        flush=True,
    )
    if engine == "atheris":
        run_atheris(runner, args.seconds, args.seed)
    took = run_random(runner, args.seconds, args.seed)
    return runner.report("random (seeded mutations)", took)
