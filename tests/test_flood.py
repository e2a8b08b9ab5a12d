"""Floods and a full ingest queue: decided, published behaviour, never a silent drop."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiomqtt

from monitor.ratelimit import RateLimiter
from tests.conftest import wait_for
from tests.dbutil import count


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
        await wait_for(lambda: count(db, "observations", "bed='calm'") == 10,
                       what="every calm reading stored")
        flooded = lambda: count(db, "rejections", "topic LIKE ?", f"{p}/w1/flood/%")  # noqa: E731
        await wait_for(lambda: count(db, "observations", "bed='flood'") + flooded() == n,
                       what="every flood message stored or rejected")
        stored = count(db, "observations", "bed='flood'")
        assert 19 <= stored < 60  # the burst (the admit took a token), a few at the rate
        # published: coalesced to about one a second per bed, with the counts
        await wait_for(lambda: sum(1 + m.get("rejected_since_last", 0)
                                   for m in rejected.json()) >= flooded(),
                       what="every rejection published or counted")
    msgs = rejected.json()
    assert "rate limit" in msgs[0]["reason"] and len(msgs) < flooded()
    assert count(db, "rejections", "topic LIKE ?", f"{p}/w1/calm/%") == 0


async def test_a_full_queue_refuses_qos0_and_holds_every_qos1(make_daemon, broker):
    d = await make_daemon(ingest={"max_pending": 10}, storage={"busy_timeout_s": 0.2})
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.publish(f"{p}/w1/b1/admit", f'{{"patient_id": "P", "ts": {now - 600}}}',
                        qos=1)
        await wait_for(lambda: count(db, "admissions") == 1)
        lock = sqlite3.connect(db)
        lock.execute("BEGIN EXCLUSIVE")  # commits wait: the queue fills
        try:
            for i in range(60):
                await c.publish(f"{p}/w1/b1/vitals", f'{{"ts": {now - 200 + i}, "hr": 80}}',
                                qos=0)
            for i in range(60):
                await c.publish(f"{p}/w1/b1/vitals", f'{{"ts": {now - 100 + i}, "hr": 81}}',
                                qos=1)
            await wait_for(lambda: len(d.pipeline.pending) >= 70, what="queue filled")
        finally:
            lock.rollback()
            lock.close()
    qos0 = "ts < ?"
    await wait_for(lambda: count(db, "observations", "ts >= ?", now - 100) == 60,
                   what="every QoS 1 reading stored")
    await asyncio.sleep(0.2)
    refused = count(db, "rejections", "reason LIKE 'ingest queue full%'")
    assert refused > 0
    assert count(db, "observations", qos0, now - 100) + refused == 60  # none lost silently
