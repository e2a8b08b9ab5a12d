"""Received -> routed -> committed -> acknowledged -> applied -> published.

`on_message` runs in the MQTT read loop and only routes (cheap, synchronous). `run`
commits whatever has accumulated while the previous commit ran: batches grow with the
load, and each message is acknowledged right after the commit that holds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

import orjson

from monitor.clock import Clock, iso
from monitor.config import Config
from monitor.ingest.admissions import Admissions
from monitor.ingest.items import Item, kept_topic
from monitor.ingest.ratelimit import RateLimiter
from monitor.ingest.route import Router
from monitor.ops.metrics import Metrics
from monitor.state.forecasting import load_forecaster
from monitor.state.ward import Ward
from monitor.store.reads import admission_rows
from monitor.store.writer import Store, StoreError

log = logging.getLogger("crswatch.pipeline")
FLOOD_ROW_S = 60.0  # a flooding bucket's rejections: one stored row (with its count) per minute


class Outbox:
    """What the daemon publishes, in order; kept across reconnects (bounded). When full
    (the broker has been unreachable for a long time), the oldest publication gives way:
    counted in `dropped` and reported by `on_drop`, never silently (the alert itself is
    stored either way; what is lost is its MQTT copy)."""

    def __init__(self, limit: int = 100_000, on_drop: Callable[[int], None] | None = None):
        self.queue: deque[tuple[str, bytes, int, bool]] = deque()
        self.limit = limit
        self.dropped = 0
        self.on_drop = on_drop
        self.ready = asyncio.Event()

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(1)
        self.queue.append((topic, payload, qos, retain))
        self.ready.set()


class Pipeline:
    def __init__(
        self,
        *,
        router: Router,
        store: Store,
        ward: Ward,
        metrics: Metrics,
        clock: Clock,
        prefix: str,
        batch_max: int,
        ack,
        outbox: Outbox,
        limiter: RateLimiter | None = None,
        max_pending: int = 50_000,
        unserved: RateLimiter | None = None,
        rejected_payload_max: int = 4096,
    ):
        self.router, self.store, self.ward = router, store, ward
        self.metrics, self.clock, self.prefix = metrics, clock, prefix
        self.batch_max = batch_max
        self.ack = ack  # [(conn, mid, qos), ...] -> None: PUBACK these, in this order
        self.outbox = outbox
        self.pending: deque[Item] = deque()
        self.extra: list[tuple[str, dict]] = []  # timeline rows waiting for the next commit
        self.wakeup = asyncio.Event()
        self.store_ok = True
        self.store_error = ""
        self.limiter = limiter or RateLimiter(float("inf"), float("inf"))
        # Every message for a bed without an admission (and any topic we do not serve)
        # shares one bucket: new topic names cannot dodge the rate limit.
        self.unserved = unserved or RateLimiter(float("inf"), float("inf"))
        self.unserved_key = f"{prefix}/+/+"
        self.rejected_payload_max = rejected_payload_max
        self.max_pending = max_pending
        # Rejections of a flooding bed are stored one row per bed and commit (with their
        # count) and published at most once a second per bed (with theirs).
        self.flood_seen: dict[str, list] = {}  # bed topic -> [last published ts, unsaid]
        self.flood_open: dict[str, Item] = {}  # bed topic -> its row waiting for a commit
        # bucket -> (id, first received ts) of its stored flood row, which the flood's
        # later messages are added to for FLOOD_ROW_S: one row a minute, however the
        # messages fall into commits (an attacker's trickle cannot make a row each).
        self.flood_rows: dict[str, tuple[int, float]] = {}
        self.seq = 0  # messages received: the order their PUBACKs go out in
        self._received: dict[str, object] = {}  # kind -> its counter
        self.on_committed = None  # items -> None, after each committed batch (the audit)

    @classmethod
    def open(
        cls,
        cfg: Config,
        clock: Clock,
        metrics: Metrics,
        outbox: Outbox,
        ack=lambda acks: None,
        durable: bool = True,
    ) -> Pipeline:
        """Open the store, rebuild admissions and every bed's state from it."""
        store = Store(cfg["storage.path"], cfg["storage.busy_timeout_s"], durable)
        admissions = Admissions()
        ward = Ward(cfg.windows())
        reader = store.reader()
        try:
            admissions.load(admission_rows(reader))
            if cfg["forecast.enabled"]:
                ward.forecaster = load_forecaster(cfg, reader)
            ward.restore(reader, list(admissions.active.values()))
        finally:
            reader.close()
        local_tz, ward_tz = cfg.timezones()
        router = Router(
            cfg.prefix,
            admissions,
            max_bytes=cfg["ingest.max_message_bytes"],
            max_future_s=cfg["ingest.max_future_s"],
            max_past_s=cfg["ingest.max_past_s"],
            local_tz=local_tz,
            ward_tz=ward_tz,
            on_internal_error=lambda d, e: metrics.internal_errors.labels(d, e).inc(),
        )
        pipeline = cls(
            router=router,
            store=store,
            ward=ward,
            metrics=metrics,
            clock=clock,
            prefix=cfg.prefix,
            batch_max=cfg["storage.batch_max"],
            ack=ack,
            outbox=outbox,
            max_pending=cfg["ingest.max_pending"],
            limiter=RateLimiter(cfg["ingest.max_rate_per_bed"], cfg["ingest.burst_per_bed"]),
            unserved=RateLimiter(cfg["ingest.unserved_rate"], cfg["ingest.unserved_burst"]),
            rejected_payload_max=cfg["ingest.rejected_payload_max"],
        )
        pipeline.add_rows(ward.tick(clock()))
        return pipeline

    def process_now(self, topic: str, payload: bytes) -> Item:
        """Route, commit and apply one message synchronously (replay, tests): the same
        steps as the daemon's loop, without the MQTT edge."""
        return self.process_batch([(topic, payload)])[0]

    def process_batch(self, messages: list[tuple[str, bytes]]) -> list[Item]:
        """Route messages received together, commit them in one transaction and apply
        them, synchronously (replay): what `run` does with one batch."""
        batch = self.commit_batch(messages)
        self.add_rows(self.ward.apply(batch, self.clock()))
        return batch

    def commit_batch(self, messages: list[tuple[str, bytes]]) -> list[Item]:
        """The first half of `process_batch`: route and commit, not apply (replay's
        routing process; the grading process applies what it committed)."""
        now = self.clock()
        batch = [self.router.route(topic, payload, now) for topic, payload in messages]
        extra, self.extra = self.extra, []
        self.store.write_sync(batch, extra)
        self._account(batch)
        return batch

    async def commit_now(self) -> None:
        """Commit the rows waiting (alert events, audit records) before answering a user.
        The one writer runs writes in order, so this cannot overtake an earlier batch."""
        extra, self.extra = self.extra, []
        if extra:
            try:
                await self.store.write([], extra)
            except StoreError:
                self.extra = extra + self.extra
                raise

    def flush(self) -> None:
        """Commit pending timeline rows now (synchronously)."""
        extra, self.extra = self.extra, []
        if extra:
            self.store.write_sync([], extra)

    async def submit(self, topic: str, payload: bytes) -> Item:
        """Route a message that did not come over MQTT (a care event entered on the
        dashboard) through the same path, and return it once committed: `kind` tells
        whether it was stored ("care", ...) or rejected (with `reason`)."""
        item = self.router.route(topic, payload, self.clock())
        item.done = asyncio.get_running_loop().create_future()
        self.metrics.received.labels(topic.rsplit("/", 1)[-1]).inc()
        self.pending.append(item)
        self.wakeup.set()
        return await item.done

    async def submit_rejection(self, topic: str, reason: str, payload: bytes) -> Item:
        """Store and publish the rejection of a message that cannot even be routed (an
        MLLP frame without a bed), and return it once committed."""
        item = Item(topic, self.clock(), "reject", payload=payload[: self.rejected_payload_max])
        item.reason = reason
        item.done = asyncio.get_running_loop().create_future()
        self.pending.append(item)
        self.wakeup.set()
        return await item.done

    def on_message(self, topic: str, payload: bytes, mid: int, qos: int, conn) -> None:
        now = self.clock()
        self.seq += 1
        parts = topic.split("/")
        kind = parts[-1] if len(parts) == 4 else "unknown"
        counter = self._received.get(kind)
        if counter is None:
            counter = self._received[kind] = self.metrics.received.labels(kind[:16])
        counter.inc()
        if len(parts) == 4 and (parts[1], parts[2]) in self.router.admissions.active:
            key, limiter = topic[: -len(kind) - 1], self.limiter  # an admitted bed's own
        else:
            key, limiter = self.unserved_key, self.unserved
        if not limiter.allow(key, now):
            held = self.flood_open.get(key)
            if held is not None:  # one more for the rejection waiting for the next commit
                held.count += 1
                held.last_ts = now
                held.acks.append((self.seq, conn, mid, qos))
                return
            if limiter is self.limiter:
                why = f"this bed sent more than {limiter.rate:g} messages/s"
            else:
                why = (
                    f"messages for beds without an admission (and unknown topics), together, "
                    f"came faster than {limiter.rate:g}/s"
                )
            item = Item(
                topic,
                now,
                "reject",
                payload=payload[: self.rejected_payload_max],
                reason=f"rate limit: {why} (burst {limiter.burst:g}); not decoded",
                flood=True,
                bucket=key,
                acks=[],
            )
            row = self.flood_rows.get(key)
            if row is not None and 0 <= now - row[1] < FLOOD_ROW_S:
                item.merge_into = row[0]
            self.flood_open[key] = item
        elif qos == 0 and len(self.pending) >= self.max_pending:
            item = Item(
                topic,
                now,
                "reject",
                payload=payload[: self.rejected_payload_max],
                reason=f"ingest queue full ({len(self.pending)} messages waiting); "
                "a QoS 0 message is not held: publish at QoS 1",
            )
        else:
            item = self.router.route(topic, payload, now)
            if item.kind == "reject":
                item.payload = item.payload[: self.rejected_payload_max]
        item.mid, item.qos, item.conn, item.seq = mid, qos, conn, self.seq
        self.pending.append(item)
        self.wakeup.set()

    def _acknowledge(self, batch: list[Item]) -> None:
        """PUBACK every message the batch committed, in the order received (MQTT 3.1.1
        4.6.0-2), a flood rejection's many messages included."""
        acks = [(item.seq, item.conn, item.mid, item.qos) for item in batch]
        if any(item.acks for item in batch):
            for item in batch:
                if item.acks:
                    acks += item.acks
            acks.sort(key=lambda a: a[0])
        self.ack([(conn, mid, qos) for _, conn, mid, qos in acks])

    def add_rows(self, rows: list[dict]) -> None:
        if rows:
            self.extra += [("grades", row) for row in rows]
            self.metrics.grade_changes.inc(len(rows))
            self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while True:
            if not self.pending and not self.extra:
                if stop.is_set():
                    return
                self.wakeup.clear()
                waiter = asyncio.create_task(self.wakeup.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            n = min(len(self.pending), self.batch_max)
            batch = [self.pending.popleft() for _ in range(n)]
            self.flood_open.clear()  # later flood messages start a new row
            extra, self.extra = self.extra, []
            self.metrics.pending.set(len(self.pending))
            started = time.perf_counter()
            try:
                await self.store.write(batch, extra)
            except StoreError as e:
                # Nothing committed, nothing acknowledged: the broker keeps the messages.
                self.store_ok, self.store_error = False, str(e)
                self.metrics.store_errors.inc()
                log.error("store write failed (%s); retrying in %.1f s", e, backoff)
                self.pending.extendleft(reversed(batch))
                self.extra = extra + self.extra
                if stop.is_set():
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:  # a bug (rolled back): keep the batch for the restarted loop
                self.pending.extendleft(reversed(batch))
                self.extra = extra + self.extra
                raise
            backoff = 0.2
            self.metrics.commit_seconds.observe(time.perf_counter() - started)
            self.store_ok, self.store_error = True, ""
            self.metrics.batch_size.set(len(batch))
            self._acknowledge(batch)
            self._account(batch)
            if self.on_committed is not None:
                self.on_committed(batch)
            self.add_rows(self.ward.apply(batch, self.clock()))
            for item in batch:
                if item.done is not None and not item.done.done():
                    item.done.set_result(item)

    def _account(self, batch: list[Item]) -> None:
        m = self.metrics
        for item in batch:
            if item.kind == "reject":
                m.rejected.inc(item.count)
                if item.flood and item.row_id and item.merge_into != item.row_id:
                    self.flood_rows[item.bucket] = (item.row_id, item.received_ts)
                if item.flood and not self._say_flood(item):
                    continue
                self.outbox.put(
                    f"{self.prefix}/rejected",
                    orjson.dumps(
                        {
                            "topic": kept_topic(item.topic),
                            "reason": item.reason,
                            "received_ts": iso(item.received_ts),
                            **item.extra,
                        }
                    ),
                )
            elif item.kind == "duplicate":
                m.duplicates.inc()
            elif item.kind == "vitals":
                m.stored.inc(item.points)
                if item.extra.get("skipped"):  # stored, but not all of it: say what was not
                    self.outbox.put(
                        f"{self.prefix}/rejected",
                        orjson.dumps(
                            {
                                "topic": item.topic,
                                "reason": "partly stored: " + "; ".join(item.extra["skipped"]),
                                "received_ts": iso(item.received_ts),
                                "partial": True,
                                **item.extra,
                            }
                        ),
                    )

    def _say_flood(self, item: Item) -> bool:
        """Publish this flood rejection now (True), or count it for the next one. What is
        published carries `count`: the messages it stands for, those not said before
        included."""
        bed = item.bucket
        seen = self.flood_seen.setdefault(bed, [-1e18, 0])
        if item.received_ts - seen[0] < 1.0:
            seen[1] += item.count
            return False
        item.extra = {"count": item.count + seen[1]}
        self.flood_seen[bed] = [item.received_ts, 0]
        return True

    def flush_flood(self, now: float) -> None:
        """Publish the count of flood rejections not yet said (once a second)."""
        for bed, (last, unsaid) in list(self.flood_seen.items()):
            if unsaid and now - last >= 1.0:
                self.outbox.put(
                    f"{self.prefix}/rejected",
                    orjson.dumps(
                        {
                            "topic": f"{bed}/+",
                            "reason": "rate limit: more messages from this bed rejected"
                            if bed != self.unserved_key
                            else "rate limit: more messages for beds without an admission rejected",
                            "received_ts": iso(now),
                            "count": unsaid,
                        }
                    ),
                )
                self.flood_seen[bed] = [now, 0]
            elif now - last > 60:
                del self.flood_seen[bed]
        self.limiter.forget_idle(now)
        self.unserved.forget_idle(now)
        for key, (_, first) in list(self.flood_rows.items()):
            if not 0 <= now - first < FLOOD_ROW_S:
                del self.flood_rows[key]

    def beat(self) -> None:
        """One heartbeat row for the next commit."""
        self.extra.append(("heartbeat", {"id": 1, "ts": self.clock()}))
        self.wakeup.set()

    async def heartbeat(self, stop: asyncio.Event, interval: float) -> None:
        """Prove the store is writable even when no message arrives (a full disk must
        show on /healthz before the next reading does)."""
        while not stop.is_set():
            self.beat()
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
