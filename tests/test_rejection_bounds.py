"""Rejections cannot fill the disk: invented topic names share one rate-limit bucket
(they cannot dodge it), what is stored of a topic and a payload is cut, and old
rejections are deleted after storage.rejections_keep_days."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

from monitor import config
from monitor.ops.metrics import Metrics
from monitor.pipeline import Outbox, Pipeline
from tests.conftest import daemon_config, wait_for
from tests.support.db import count, query
from tests.test_flood import rejected_messages


async def test_invented_topics_share_one_bucket_and_are_stored_cut(make_daemon, publisher, listen):
    d = await make_daemon(
        ingest={"unserved_rate": 1.0, "unserved_burst": 10.0, "rejected_payload_max": 512}
    )
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    await publisher(f"{p}/w1/real/admit", {"patient_id": "P1", "ts": now - 600})
    await wait_for(lambda: count(db, "admissions") == 1)
    n, big = 300, os.urandom(30_000).hex().encode()  # 60 KB payloads
    started = time.monotonic()
    async with listen(f"{p}/rejected") as rejected:
        for i in range(n):  # each message on a new, long, invented bed name
            await publisher(f"{p}/w{i % 7}/{'x' * 3000}{i}/vitals", big)
            if i % 50 == 0:  # the admitted bed keeps its own bucket meanwhile
                await publisher(f"{p}/w1/real/vitals", {"ts": now - n + i, "hr": 70})
        await wait_for(lambda: rejected_messages(db, f"{p}/w%/x%") == n, what="all accounted")
        await wait_for(lambda: count(db, "observations") == 6, what="the real bed's readings")
        await wait_for(lambda: sum(m.get("count", 1) for m in rejected.json()) == n)
    rows = count(db, "rejections")
    refilled = time.monotonic() - started + 1  # tokens back at 1 a second meanwhile
    assert rows <= 10 + refilled + 1  # the burst, the refill, one counted row for the rest
    (longest_topic, longest_payload, total) = query(
        db, "SELECT max(length(topic)), max(length(payload)), sum(length(payload)) FROM rejections"
    )[0]
    assert longest_topic <= 160 and longest_payload <= 512
    assert total <= rows * 512
    assert all(len(m["topic"]) <= 160 for m in rejected.json())
    limited = query(db, "SELECT reason FROM rejections WHERE count > 1 LIMIT 1")[0][0]
    assert "beds without an admission" in limited


async def test_old_rejections_are_deleted_at_start_and_counted(broker, tmp_path, make_daemon):
    cfg = daemon_config(broker, tmp_path, storage={"rejections_keep_days": 30.0})
    d = await make_daemon(cfg)
    await d.stop()
    db, now = cfg["storage.path"], time.time()
    conn = sqlite3.connect(db)
    with conn:
        for age_days in (400, 31, 29, 0):
            conn.execute(
                "INSERT INTO rejections (received_ts, topic, reason, payload) VALUES (?,?,?,?)",
                (now - age_days * 86400, f"{cfg.prefix}/w/b/vitals", f"{age_days}", b"x"),
            )
    conn.close()
    d = await make_daemon(cfg)
    await wait_for(lambda: count(db, "rejections") == 2, what="old rejections deleted")
    assert sorted(r[0] for r in query(db, "SELECT reason FROM rejections")) == ["0", "29"]
    assert d.metrics.registry.get_sample_value("crswatch_rejections_pruned_total") == 2


async def test_a_trickling_flood_is_one_row_a_minute_whatever_the_commits(tmp_path):
    """An attacker sending just slowly enough for each message to get a commit of its own
    still gets one stored row a minute per bucket (the later messages are counted in it)."""
    cfg = config.from_dict(
        {
            "storage": {"path": str(tmp_path / "t.db")},
            "ingest": {"unserved_rate": 1.0, "unserved_burst": 2.0},
        }
    )
    t = [1_000_000.0]
    acked: list[int] = []
    pipe = Pipeline.open(
        cfg, lambda: t[0], Metrics(), Outbox(), ack=lambda a: acked.extend(m for _, m, _ in a)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(pipe.run(stop))
    sent = 0

    async def one(step: float) -> None:
        nonlocal sent
        sent += 1
        pipe.on_message(f"crs/w1/invented{sent}/vitals", b"{}", sent, 1, "c")
        await wait_for(lambda: len(acked) == sent, what="committed and acknowledged")
        t[0] += step

    for _ in range(40):  # 4 s at 10 messages a second, each in a commit of its own
        await one(0.1)
    t[0] += 61
    for _ in range(3):  # a minute later: the bucket's burst again, then a new row
        await one(0.0)
    stop.set()
    await task
    pipe.store.close()
    db = cfg["storage.path"]
    limited = query(db, "SELECT count FROM rejections WHERE reason LIKE 'rate limit%' ORDER BY id")
    others = count(db, "rejections", "reason NOT LIKE 'rate limit%'")
    assert len(limited) == 2 and sum(c for (c,) in limited) + others == sent
