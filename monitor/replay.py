"""The replay engine: recorded messages through the daemon's own pipeline, as fast as they go.

FILE is JSONL, one message a line: {"ts": time it was delivered (ISO or epoch), "topic",
"payload": text} (what `simulate --record` writes). The daemon's pipeline runs on a
throw-away database with a clock that reads the recording's time, and does what the
daemon's loops do (monitor/daemon.py), on that clock:

- messages delivered within `state.publish_interval_s` of each other are routed and
  committed as one batch, then applied (the pipeline's `run`);
- the beds they touched are graded, each at most every `state.bed_min_interval_s`
  (`Ward.defer`, `reassess_touched`: the state loop), their states published and handed
  to alerting (which evaluates a state only when what the rules read changed);
- every `state.check_interval_s` the beds not graded meanwhile are assessed against the
  clock (`Ward.tick`: stale and lost vitals), and every second alerting ticks
  (escalations, repeats, holds).

With `ack_after` set, a nurse acknowledges every alert that asked someone to act (raised
or escalated to a receiver) that many seconds of recorded time later, if it is still
active (user "replay-nurse"): repeats stop as on a ward where alerts are answered, and
`notifications` then counts what such a ward would hear. Without it nobody answers.

The recorded clock advances with the messages: work due between two deliveries is done
at the second one, or every TICK_FILL_S of recorded time while the ward sends nothing.
So what replay decides is what the daemon would have decided, to within the gap between
two messages of the ward (seconds to a minute on a ward exporting every minute).

The command line (printing, --decisions, --states, scoring against ground truth) is
commands/replay.py.
"""

from __future__ import annotations

import itertools
import multiprocessing
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any, TextIO

import orjson

from alerts.alert import Decision
from alerts.engine import UnknownAlert
from alerts.view import BedView
from monitor import config as config_mod
from monitor.ingest.items import Item
from monitor.ingest.validate import parse_ts
from monitor.ops.metrics import Metrics
from monitor.outputs.alerting import Alerting
from monitor.pipeline import Outbox, Pipeline
from monitor.state.view import to_wire

TICK_FILL_S = 60.0  # while no message arrives, the recorded clock still ticks this often
PROGRESS_STEPS = 50
SPLIT_CHUNK = 2000  # a split replay: items (and steps) handed over at a time...
SPLIT_QUEUE = 16  # ... and chunks in flight at most (the routing process waits)


class ReplayError(Exception):
    pass


@dataclass
class Clock:
    t: float = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Result:
    messages: int = 0
    rejected: int = 0
    batches: int = 0
    gradings: int = 0  # bed assessments made (touched beds and clock ticks)
    states: int = 0  # bed states published
    decisions: int = 0  # alert decisions made
    start: float = 0.0  # recorded time of the first and last message
    end: float = 0.0


StateSink = Callable[[float, str, str, dict[str, Any]], None]
ViewSink = Callable[[float, str, str, BedView], None]
DecisionSink = Callable[[Decision], None]


def iter_records(path: Path) -> Iterator[tuple[float, str, bytes]]:
    """Every message of a recording, in file order (delivery order, as recorded)."""
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                yield parse_ts(rec["ts"]), rec["topic"], rec["payload"].encode()
            except Exception as e:  # any malformed line is the file's fault
                raise ReplayError(f"{path}:{n}: not a recorded message ({e})") from None


def read_records(path: Path) -> list[tuple[float, str, bytes]]:
    return list(iter_records(path))


def replay_config(cfg: config_mod.Config, prefix: str, db_path: str) -> config_mod.Config:
    """The user's config, every setting kept, with the recording's topic prefix and a
    throw-away database."""
    try:
        return cfg.replace(**{"storage.path": db_path, "mqtt.topic_prefix": prefix})
    except config_mod.ConfigError as e:
        raise ReplayError(f"recording: {e}") from None


def replay(
    records: Iterable[tuple[float, str, bytes]] | Path,
    cfg: config_mod.Config,
    *,
    on_state: StateSink | None = None,
    on_decision: DecisionSink | None = None,
    progress: TextIO | None = None,
    total: int | None = None,
    ack_after: float | None = None,
    on_view: ViewSink | None = None,
    split: bool = False,
) -> Result:
    """Run `records` (time, topic, payload; in delivery order, read lazily; or a
    recording file's Path) through the pipeline. `on_state(ts, ward, bed, state)` sees
    every published bed state, `on_decision(d)` every alert decision, in order, as they
    happen. `total`: the number of records, for the progress bar. `ack_after`: seconds
    after which a nurse acknowledges each alert that asked someone to act (None: nobody
    does). `on_view(ts, ward, bed, view)` sees each published state as its typed view
    (alerts/view.py), without the cost of making the wire payload.

    `split` (a Path only): the work takes both cores. A second process reads the file,
    routes and commits each batch (the daemon's ingest, on its own throw-away database)
    and hands the committed items over; this one applies them, grades, alerts and
    reports: the same steps, the same items, in the same order as in one process
    (tests/test_replay.py compares the two)."""
    if ack_after is not None and not ack_after >= 0:
        raise ReplayError(f"ack_after must be 0 or more seconds, not {ack_after}")
    path = records if isinstance(records, Path) else None
    it = iter_records(path) if path is not None else iter(records)
    first = next(it, None)
    if first is None:
        raise ReplayError("no messages to replay")
    prefix = first[1].split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="crswatch-replay-") as tmp:
        run = _Run(replay_config(cfg, prefix, f"{tmp}/replay.db"), first[0], ack_after)
        child = None
        try:
            if path is not None and split:
                routing = replay_config(cfg, prefix, f"{tmp}/routing.db")
                queue, child = _start_routing(path, routing, first[0], run.window)
                steps: Iterable[tuple] = _received(queue, child)
            else:
                records_again = itertools.chain([first], it)
                steps = (
                    (now, batch, None, len(batch), 0)
                    for now, batch in schedule(records_again, run.window, first[0])
                )
            return run.all(steps, on_state, on_decision, progress, total, on_view)
        finally:
            if child is not None:
                child.kill()
                child.join()
            run.pipe.store.close()


def _start_routing(path: Path, cfg: config_mod.Config, start: float, window: float):
    """The routing process of a split replay (no forecast of its own: it grades nothing),
    and the queue its steps come on."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue(maxsize=SPLIT_QUEUE)
    child = ctx.Process(
        target=_route_file,
        args=(path, cfg.replace(**{"forecast.enabled": False}), start, window, queue),
        name="crswatch-replay-routing",
        daemon=True,
    )
    child.start()
    return queue, child


def schedule(
    records: Iterable[tuple[float, str, bytes]], window: float, start: float
) -> Iterator[tuple[float, list[tuple[str, bytes]]]]:
    """(now, batch) as the daemon's loops meet them on the recorded clock: messages
    delivered within `window` of the batch's first are one batch, committed at the time
    of its last (never before the previous step); while the ward sends nothing, empty
    steps every TICK_FILL_S."""
    clock = last = t0 = start
    batch: list[tuple[str, bytes]] = []
    for ts, topic, payload in records:
        if batch and ts - t0 > window:
            clock = max(clock, last)
            yield clock, batch
            batch = []
        if not batch:
            t0 = ts
            while clock + TICK_FILL_S < ts:  # a quiet ward: the clock ticks on
                clock += TICK_FILL_S
                yield clock, []
        batch.append((topic, payload))
        last = ts
    if batch:
        yield max(clock, last), batch


def _handed_over(item: Item) -> tuple:
    """What the grading process needs of a committed item, as a tuple (cheaper to pickle
    than the item): not its payload, nor the decoded body of readings (the ward reads
    `new`). `_taken_over` makes the item again."""
    body = None if item.kind == "vitals" else item.body
    return (item.received_ts, item.kind, item.ward, item.bed, item.record, body, item.new)


def _taken_over(t: tuple) -> Item:
    received_ts, kind, ward, bed, record, body, new = t
    return Item("", received_ts, kind, ward, bed, record, body, new=new)


def _route_file(path: Path, cfg: config_mod.Config, start: float, window: float, queue) -> None:
    """The routing process of a split replay: every step's committed items, in chunks."""
    try:
        clock = Clock(start)
        pipe = Pipeline.open(cfg, clock, Metrics(), Outbox(), durable=False)
        chunk: list = []
        size = 0
        for now, batch in schedule(iter_records(path), window, start):
            clock.t = now
            items = pipe.commit_batch(batch) if batch else []
            rejected = sum(1 for item in items if item.kind == "reject")
            kept = [_handed_over(i) for i in items if i.kind not in ("reject", "duplicate")]
            chunk.append((now, None, kept, len(items), rejected))
            size += len(items) + 1
            if size >= SPLIT_CHUNK:
                queue.put(chunk)
                chunk, size = [], 0
        pipe.store.close()
        queue.put(chunk)
        queue.put(None)  # the end
    except BaseException as e:  # the grading process says it (ReplayError: the file's fault)
        queue.put(e if isinstance(e, ReplayError) else ReplayError(f"routing: {e!r}"))


def _received(queue, child) -> Iterator[tuple]:
    """The steps the routing process hands over, in order; its failure raised here."""
    while True:
        try:
            chunk = queue.get(timeout=1.0)
        except Empty:
            if not child.is_alive():
                why = f"the routing process ended (exit code {child.exitcode})"
                raise ReplayError(why) from None
            continue
        if chunk is None:
            return
        if isinstance(chunk, BaseException):
            raise chunk
        for now, batch, kept, n, rejected in chunk:
            yield now, batch, [_taken_over(t) for t in kept], n, rejected


class _Run:
    """One replay: the pipeline, the ward and alerting on the recorded clock."""

    def __init__(self, cfg: config_mod.Config, start: float, ack_after: float | None = None):
        self.cfg = cfg
        self.ack_after = ack_after
        self.acks: list[tuple[float, str]] = []  # (when due, alert id), in time order
        self.on_view: ViewSink | None = None
        self.clock = Clock(start)
        self.pipe = Pipeline.open(cfg, self.clock, Metrics(), Outbox(), durable=False)
        ward = self.ward = self.pipe.ward
        ward.defer = True  # as the daemon: graded once per state pass, not per reading
        ward.tick_after_s = cfg["state.check_interval_s"]
        ward.forecast_every_s = cfg["forecast.refresh_s"]
        self.alerting = Alerting(
            settings=cfg.alerting, pipeline=self.pipe, clock=self.clock, prefix=cfg.prefix
        )
        self.alerting.keep_decisions = True
        self.window = cfg["state.publish_interval_s"]
        self.bed_min = cfg["state.bed_min_interval_s"]
        self.check = cfg["state.check_interval_s"]
        self.last_check = self.last_tick = start
        self.result = Result(start=start, end=start)

    def all(self, steps, on_state, on_decision, progress, total, on_view=None) -> Result:
        """Every step (now, messages to route, or items routed and committed elsewhere,
        how many messages, how many rejected), then the last holds and escalations."""
        self.on_view = on_view
        every = max(1, (total or 1) // PROGRESS_STEPS)
        shown = done = 0
        r = self.result
        for now, batch, items, n, rejected in steps:
            rejected += self.step(now, on_state, on_decision, batch, items)
            if n:
                r.messages += n
                r.rejected += rejected
                r.batches += 1
            done += n
            if progress is not None and done // every > shown:
                shown = done // every
                _show(progress, done, total)
        r.end = self.clock.t
        # the last holds and escalations: one more pass a check interval later
        self.step(self.clock.t + self.check, on_state, on_decision)
        self.pipe.flush()
        if progress is not None:
            _show(progress, done, total)
            progress.write("\n")
        return r

    def step(self, now: float, on_state, on_decision, batch=None, items=None) -> int:
        """What the daemon's loops do at `now`: commit and apply the batch (`batch`: the
        messages, routed here; `items`: committed by a split replay's routing process),
        grade the touched beds, the clock's check when due, publish states, tick alerting.
        Returns how many of `batch` were rejected."""
        r, ward, pipe = self.result, self.ward, self.pipe
        self.clock.t = now
        self._acknowledge(now)
        rejected = 0
        if batch:
            routed = pipe.process_batch(batch)
            rejected = sum(1 for item in routed if item.kind == "reject")
        elif items:
            pipe.add_rows(ward.apply(items, now))
            pipe.flush()
        pipe.add_rows(ward.reassess_touched(now, self.bed_min))
        r.gradings += ward.graded_in_pass
        if not 0 <= now - self.last_check < self.check:
            self.last_check = now
            graded = dict(ward.graded)
            pipe.add_rows(ward.tick(now))
            r.gradings += sum(1 for k, v in ward.graded.items() if graded.get(k) != v)
        for ward_name, bed, view in ward.take_dirty():
            r.states += 1
            if on_state is not None:
                on_state(now, ward_name, bed, to_wire(view))
            if self.on_view is not None:
                self.on_view(now, ward_name, bed, view)
            self.alerting.on_state(view)
        if not 0 <= now - self.last_tick < 1.0:
            self.last_tick = now
            self.alerting.tick()
            pipe.flush_flood(now)
        decisions, self.alerting.decisions = self.alerting.decisions, []
        r.decisions += len(decisions)
        if self.ack_after is not None:
            self.acks += [
                (now + self.ack_after, d.alert["id"])
                for d in decisions
                if d.notify and d.receivers and d.event in ("raised", "escalated")
            ]
        if on_decision is not None:
            for d in decisions:
                on_decision(d)
        return rejected

    def _acknowledge(self, now: float) -> None:
        """The nurse's acknowledgements due by now (the alert may have ended meanwhile)."""
        due = 0
        for when, alert_id in self.acks:
            if when > now:
                break
            due += 1
            try:
                decisions = self.alerting.engine.ack(alert_id, "replay-nurse", now)
            except UnknownAlert:
                continue  # resolved before anyone answered it
            if decisions and decisions[0].event == "acknowledged":
                self.alerting.handle(decisions)
        del self.acks[:due]


def _show(progress: TextIO, done: int, total: int | None) -> None:
    if total:
        share = min(1.0, done / total)
        progress.write(
            f"\rreplay [{'#' * int(share * 30):<30}] {share:4.0%} {done}/{total} messages"
        )
    else:
        progress.write(f"\rreplay: {done} messages")
    progress.flush()
