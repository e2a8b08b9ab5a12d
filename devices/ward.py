"""A simulated ward: N beds, each its own patient, staff, protocol and MQTT client.

`ward_stream(opts, start)` merges every bed's stream into one deterministic sequence
(delivery time, then bed, then order within the bed). `generate(opts)` writes it out as
fast as possible (`--no-mqtt`). `run_ward(opts, clock, stop_event)` publishes each item
when the simulated clock reaches its delivery time, through one BedLink per bed; when
behind, it publishes in order without sleeping.

For `./run demo` (one process, one clock for simulator and daemon):

    opts = WardOptions(host=..., port=..., prefix=cfg.prefix, speed=120, demo=True,
                       discharge_first=True)
    clock = opts.make_clock()                 # SimClock: sim now = start + elapsed * speed
    daemon = Daemon(cfg, clock=clock)
    stats = await run_ward(opts, clock, stop_event)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import IO, Any

import numpy as np
import orjson

from monitor.clinical.thresholds import NAME
from monitor.clock import iso

from .artefacts import ArtefactPlan
from .bed import PROTOCOLS, BedSim, Out
from .clock import MAX_SPEED, MIN_SPEED, SimClock, parse_start
from .confounders import with_confounders
from .link import BedLink
from .physiology import COHORTS, MIXED_COHORTS, draw_patient

log = logging.getLogger("crswatch.simulate")
MIXED_PROTOCOLS = ("json", "fhir", "hl7")
SLOW_EXPORT_S = 300.0  # a bed whose monitor exports every 5 minutes (--slow-share)


@dataclass
class WardOptions:
    beds: int = 12
    speed: float = 1.0
    protocol: str = "mixed"  # json | fhir | hl7 | mixed (beds take turns)
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "crs"
    ward: str = "ward1"
    cohort: str = "mixed"  # autoimmune | lymphoma | myeloma | mixed (autoimmune or lymphoma)
    seed: int = 1
    days: float = 14.0
    start: float | str | None = None  # epoch s, ISO 8601, "-2d"; None: now
    truth: str | None = None  # JSONL file of true grades and artefacts
    record: str | None = None  # JSONL file of every message published
    mqtt: bool = True
    username: str | None = None
    password: str | None = None
    demo: bool = False  # CRS onset within the first day after admission
    fast_interval_s: float = 5.0
    artefact_scale: float = 1.0  # artefact rates x this (0: none)
    confounders: float = 1.0  # rates of what is not CRS x this (0: none; confounders.py)
    slow_share: float = 0.0  # share of beds whose monitor exports every 5 minutes
    discharge_first: bool = False  # empty discharge before each admit (reused demo beds)

    @classmethod
    def from_obj(cls, obj: Any) -> WardOptions:
        """From WardOptions, an argparse Namespace (devices.cli) or any object with some
        of these attributes; the CLI's names no_mqtt, fast_interval and artefacts too."""
        if isinstance(obj, WardOptions):
            return obj
        values = {f.name: getattr(obj, f.name) for f in fields(cls) if hasattr(obj, f.name)}
        if hasattr(obj, "no_mqtt"):
            values["mqtt"] = not obj.no_mqtt
        for cli, name in (("fast_interval", "fast_interval_s"), ("artefacts", "artefact_scale")):
            if getattr(obj, cli, None) is not None:
                values[name] = getattr(obj, cli)
        return cls(**{k: v for k, v in values.items() if v is not None or k == "start"})

    def check(self) -> None:
        """ValueError with one short reason for the first bad option."""
        if not 1 <= self.beds <= 999:
            raise ValueError(f"--beds: 1 to 999, not {self.beds}")
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise ValueError(f"--speed: {MIN_SPEED:g} to {MAX_SPEED:g}, not {self.speed:g}")
        if self.protocol not in (*PROTOCOLS, "mixed"):
            raise ValueError(f"--protocol: json, fhir, hl7 or mixed, not {self.protocol!r}")
        if self.cohort not in (*COHORTS, "mixed"):
            raise ValueError(f"--cohort: {', '.join(COHORTS)} or mixed, not {self.cohort!r}")
        for name in ("prefix", "ward"):
            if not NAME.match(getattr(self, name)):
                raise ValueError(f"--{name}: 1-32 of A-Z a-z 0-9 _ -")
        if not 0 < self.days <= 60:
            raise ValueError(f"--days: more than 0, at most 60, not {self.days:g}")
        if not 1 <= self.fast_interval_s <= 300:
            raise ValueError("--fast-interval: 1 to 300 seconds")
        if self.artefact_scale < 0:
            raise ValueError("--artefacts: a rate multiplier, 0 or more")
        if self.confounders < 0:
            raise ValueError("--confounders: a rate multiplier, 0 or more")
        if not 0 <= self.slow_share <= 1:
            raise ValueError("--slow-share: a share of the beds, 0 to 1")
        self.start_ts()

    def start_ts(self, now: float | None = None) -> float:
        """The simulated start (= every admission), whole seconds."""
        if isinstance(self.start, int | float):
            return float(int(self.start))
        return parse_start(self.start, time.time() if now is None else now)

    def make_clock(self, wall_start: float | None = None) -> SimClock:
        return SimClock(self.start_ts(), self.speed, wall_start)


@dataclass
class WardStats:
    start: float = 0.0
    end: float = 0.0
    messages: int = 0
    truths: int = 0
    artefacts: Counter = field(default_factory=Counter)
    beds: list[dict] = field(default_factory=list)  # bed, patient_id, protocol, cohort

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.artefacts.items())) or "none"
        return (
            f"{len(self.beds)} beds, {self.messages} messages from {iso(self.start)} to "
            f"{iso(self.end)}; artefacts: {kinds}"
        )


def patient_id(seed: int, ward: str, bed: str) -> str:
    return "SIM-" + hashlib.sha256(f"{seed}/{ward}/{bed}".encode()).hexdigest()[:8].upper()


def build_beds(opts: WardOptions, start: float) -> list[BedSim]:
    """Every bed, independent of the others: bed k gets the same patient whatever --beds."""
    end = start + opts.days * 86400.0
    beds = []
    for i in range(opts.beds):
        seeds = np.random.SeedSequence([opts.seed, i]).spawn(6)
        rng_patient, rng_staff, rng_noise, rng_art, rng_conf, rng_bed = (
            np.random.default_rng(s) for s in seeds
        )
        cohort = opts.cohort
        if cohort == "mixed":
            cohort = MIXED_COHORTS[int(rng_patient.integers(2))]
        protocol = MIXED_PROTOCOLS[i % 3] if opts.protocol == "mixed" else opts.protocol
        name = f"bed{i + 1:02d}"
        patient = draw_patient(
            rng_patient, cohort, patient_id(opts.seed, opts.ward, name), start, demo=opts.demo
        )
        patient = with_confounders(patient, rng_conf, end, opts.confounders)
        fast_s = SLOW_EXPORT_S if rng_bed.random() < opts.slow_share else opts.fast_interval_s
        plan = ArtefactPlan(rng_art, start, end, opts.artefact_scale)
        beds.append(
            BedSim(
                index=i,
                ward=opts.ward,
                bed=name,
                prefix=opts.prefix,
                protocol=protocol,
                patient=patient,
                staff_rng=rng_staff,
                noise_rng=rng_noise,
                plan=plan,
                end=end,
                fast_s=fast_s,
            )
        )
    return beds


def ward_stream(opts: WardOptions, beds: list[BedSim]) -> Iterator[Out]:
    streams = []
    for b in beds:
        first = []
        if opts.discharge_first:
            first = [Out(b.start, -1, "msg", f"{b.base}/discharge", b"", bed_index=b.index)]
        streams.append(itertools.chain(first, b.stream()))
    return heapq.merge(*streams, key=lambda o: (o.deliver_ts, o.bed_index, o.seq))


class Sinks:
    """The --truth and --record files (JSONL), written in stream order."""

    def __init__(self, truth: str | None, record: str | None, stats: WardStats):
        self.stats = stats
        self.truth: IO[bytes] | None = open(truth, "wb") if truth else None
        try:
            self.record: IO[bytes] | None = open(record, "wb") if record else None
        except OSError:
            if self.truth:
                self.truth.close()
            raise

    def write(self, out: Out) -> None:
        if out.kind == "truth":
            self.stats.truths += 1
            if "artefact" in out.truth:
                self.stats.artefacts[out.truth["artefact"]] += 1
            if self.truth:
                self.truth.write(orjson.dumps(out.truth) + b"\n")
            return
        self.stats.messages += 1
        if self.record:
            self.record.write(
                orjson.dumps(
                    {
                        "ts": iso(out.deliver_ts),
                        "topic": out.topic,
                        "payload": out.payload.decode("utf-8"),
                    }
                )
                + b"\n"
            )

    def close(self) -> None:
        for f in (self.truth, self.record):
            if f:
                f.close()


def _stats(opts: WardOptions, beds: list[BedSim], start: float) -> WardStats:
    return WardStats(
        start=start,
        end=start + opts.days * 86400.0,
        beds=[
            {
                "bed": b.bed,
                "patient_id": b.patient.patient_id,
                "protocol": b.protocol,
                "cohort": b.patient.cohort,
            }
            for b in beds
        ],
    )


def generate(options: Any, start: float | None = None) -> WardStats:
    """The whole simulation without MQTT, as fast as possible: --record and --truth."""
    opts = WardOptions.from_obj(options)
    start = opts.start_ts() if start is None else start
    beds = build_beds(opts, start)
    stats = _stats(opts, beds, start)
    sinks = Sinks(opts.truth, opts.record, stats)
    try:
        for out in ward_stream(opts, beds):
            sinks.write(out)
    finally:
        sinks.close()
    return stats


async def run_ward(
    options: Any, clock: SimClock | None = None, stop_event: asyncio.Event | None = None
) -> WardStats:
    """Publish the ward over MQTT in simulated real time until --days have passed or
    `stop_event` is set. `options`: WardOptions or an object with its attributes; `clock`:
    shared with the daemon in the demo (its start is the admission time of every bed;
    default `options.make_clock()`). Raises aiomqtt.MqttError if the broker cannot be
    reached at the start; later connection losses are retried."""
    opts = WardOptions.from_obj(options)
    clock = clock or opts.make_clock()
    stop = stop_event or asyncio.Event()
    start = clock.start_sim_ts
    if not opts.mqtt:
        return generate(opts, start)
    beds = build_beds(opts, start)
    stats = _stats(opts, beds, start)
    links = [
        BedLink(
            host=opts.host,
            port=opts.port,
            prefix=opts.prefix,
            ward=opts.ward,
            bed=b.bed,
            username=opts.username,
            password=opts.password,
        )
        for b in beds
    ]
    sinks = Sinks(opts.truth, opts.record, stats)
    senders: list[asyncio.Task] = []
    try:
        await asyncio.gather(*(link.connect() for link in links))
        senders = [asyncio.create_task(link.run(stop)) for link in links]
        await _dispatch(ward_stream(opts, beds), links, clock, stop, sinks)
        for link in links:
            await link.queue.put(None)
        await _wait_senders(senders, stop)
    finally:
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        sinks.close()
    return stats


async def _dispatch(
    stream: Iterator[Out], links: list[BedLink], clock: SimClock, stop: asyncio.Event, sinks: Sinks
) -> None:
    for n, out in enumerate(stream):
        if stop.is_set():
            return
        delay = clock.wall_at(out.deliver_ts) - clock.wall()
        if delay > 0.001:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
        elif n % 200 == 0:
            await asyncio.sleep(0)  # behind: no sleeping, but let the links run
        sinks.write(out)
        if out.kind != "truth":
            await links[out.bed_index].queue.put(out)


async def _wait_senders(senders: list[asyncio.Task], stop: asyncio.Event) -> None:
    """Until every sender has published its queue, or stop is set."""
    stopper = asyncio.create_task(stop.wait())
    pending = set(senders)
    try:
        while pending and not stop.is_set():
            _, pending = await asyncio.wait(
                pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopper)
    finally:
        stopper.cancel()
