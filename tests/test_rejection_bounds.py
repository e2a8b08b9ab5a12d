"""Rejections cannot fill the disk: invented topic names share one rate-limit bucket
(they cannot dodge it), what is stored of a topic and a payload is cut, and old
rejections are deleted after storage.rejections_keep_days."""

from __future__ import annotations

import os
import sqlite3
import time

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
    async with listen(f"{p}/rejected") as rejected:
        for i in range(n):  # each message on a new, long, invented bed name
            await publisher(f"{p}/w{i % 7}/{'x' * 3000}{i}/vitals", big)
            if i % 50 == 0:  # the admitted bed keeps its own bucket meanwhile
                await publisher(f"{p}/w1/real/vitals", {"ts": now - n + i, "hr": 70})
        await wait_for(lambda: rejected_messages(db, f"{p}/w%/x%") == n, what="all accounted")
        await wait_for(lambda: count(db, "observations") == 6, what="the real bed's readings")
        await wait_for(lambda: sum(m.get("count", 1) for m in rejected.json()) == n)
    rows = count(db, "rejections")
    assert rows < 60  # the burst of 10, then one row per commit (not one per message)
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
