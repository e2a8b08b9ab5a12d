"""Floods and a full ingest queue: decided, published behaviour, never a silent drop."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiomqtt

from monitor import config
from monitor.ingest.ratelimit import RateLimiter
from monitor.ops.metrics import Metrics
from monitor.pipeline import Outbox, Pipeline
from tests.conftest import wait_for
from tests.support.db import count, query


def test_token_bucket_allows_the_burst_then_the_rate():
    limiter = RateLimiter(rate=10, burst=5)
    assert [limiter.allow("b", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("b", 0.1)  # one token back after 0.1 s at 10/s
    assert not limiter.allow("b", 0.1)
    assert limiter.allow("other", 0.1)  # beds do not share a bucket
    limiter.forget_idle(100.0)
    assert limiter.buckets == {}


async def test_a_flooding_bed_is_rejected_and_the_others_flow(make_daemon, publisher, listen):
    d = await make_daemon(ingest={"max_rate_per_bed": 5.0, "burst_per_bed": 20.0})
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    for bed in ("calm", "flood"):
        await publisher(f"{p}/w1/{bed}/admit", {"patient_id": bed.upper(), "ts": now - 600})
    await wait_for(lambda: count(db, "admissions") == 2)
    n = 300
    async with listen(f"{p}/rejected") as rejected:
        for i in range(n):  # a broken device: hundreds of messages at once
            await publisher(f"{p}/w1/flood/vitals", {"ts": now - n + i, "hr": 80})
            if i % 30 == 0:  # the calm bed, meanwhile, at its normal pace
                await publisher(f"{p}/w1/calm/vitals", {"ts": now - n + i, "hr": 70})
        await wait_for(
            lambda: count(db, "observations", "bed='calm'") == 10, what="every calm reading stored"
        )
        flooded = lambda: rejected_messages(db, f"{p}/w1/flood/%")  # noqa: E731
        await wait_for(
            lambda: count(db, "observations", "bed='flood'") + flooded() == n,
            what="every flood message stored or rejected",
        )
        stored = count(db, "observations", "bed='flood'")
        assert 19 <= stored < 60  # the burst (the admit took a token), a few at the rate
        # published: coalesced to about one a second per bed, with the counts
        await wait_for(
            lambda: sum(m.get("count", 1) for m in rejected.json()) == flooded(),
            what="every rejection published or counted",
        )
    msgs = rejected.json()
    assert "rate limit" in msgs[0]["reason"] and len(msgs) < flooded()
    assert count(db, "rejections", "topic LIKE ?", f"{p}/w1/calm/%") == 0


def rejected_messages(db, topic_like: str) -> int:
    """Messages rejected on these topics: a flood row stands for `count` messages."""
    return query(
        db, "SELECT COALESCE(SUM(count), 0) FROM rejections WHERE topic LIKE ?", topic_like
    )[0][0]


async def test_a_flood_is_stored_as_one_row_per_commit_and_acked_in_order(tmp_path):
    """Past its rate a bed's messages cost one row per commit, not one each, and every one
    of them is acknowledged after that commit, in the order received."""
    cfg = config.from_dict(
        {
            "storage": {"path": str(tmp_path / "f.db")},
            "ingest": {"max_rate_per_bed": 1.0, "burst_per_bed": 2.0},
        }
    )
    acked: list[int] = []
    clock = lambda: 1_000_000.0  # noqa: E731 - time stands still: no token comes back
    pipe = Pipeline.open(
        cfg, clock, Metrics(), Outbox(), ack=lambda acks: acked.extend(mid for _, mid, _ in acks)
    )
    pipe.process_now("crs/w1/b1/admit", b'{"patient_id": "P", "ts": 999000}')
    for mid in range(1, 101):  # the flood, with a calm bed's message in the middle
        pipe.on_message("crs/w1/b1/vitals", b'{"ts": 999500, "hr": 80}', mid, 1, "c")
        if mid == 50:
            pipe.on_message("crs/w1/b2/vitals", b'{"ts": 999500, "hr": 70}', 1000, 1, "c")
    stop = asyncio.Event()
    task = asyncio.create_task(pipe.run(stop))
    await wait_for(lambda: len(acked) == 101, what="every message acknowledged")
    stop.set()
    await task
    pipe.store.close()
    assert acked == [*range(1, 51), 1000, *range(51, 101)]
    db = cfg["storage.path"]
    rows = query(
        db,
        "SELECT count, received_ts, last_received_ts FROM rejections "
        "WHERE reason LIKE 'rate limit%'",
    )
    assert rows == [(98, 1_000_000.0, 1_000_000.0)]  # 100 less the burst of 2
    assert (
        pipe.metrics.registry.get_sample_value("crswatch_messages_rejected_total") == 98 + 1
    )  # and b2: no patient admitted


async def test_a_full_queue_refuses_qos0_and_holds_every_qos1(make_daemon, broker):
    d = await make_daemon(ingest={"max_pending": 10}, storage={"busy_timeout_s": 0.2})
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.publish(f"{p}/w1/b1/admit", f'{{"patient_id": "P", "ts": {now - 600}}}', qos=1)
        await wait_for(lambda: count(db, "admissions") == 1)
        lock = sqlite3.connect(db)
        lock.execute("BEGIN EXCLUSIVE")  # commits wait: the queue fills
        try:
            for i in range(60):
                await c.publish(f"{p}/w1/b1/vitals", f'{{"ts": {now - 200 + i}, "hr": 80}}', qos=0)
            for i in range(60):
                await c.publish(f"{p}/w1/b1/vitals", f'{{"ts": {now - 100 + i}, "hr": 81}}', qos=1)
            await wait_for(lambda: len(d.pipeline.pending) >= 70, what="queue filled")
        finally:
            lock.rollback()
            lock.close()
    qos0 = "ts < ?"
    await wait_for(
        lambda: count(db, "observations", "ts >= ?", now - 100) == 60,
        what="every QoS 1 reading stored",
    )
    await asyncio.sleep(0.2)
    refused = count(db, "rejections", "reason LIKE 'ingest queue full%'")
    assert refused > 0
    assert count(db, "observations", qos0, now - 100) + refused == 60  # none lost silently
