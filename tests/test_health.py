"""/healthz tells the truth: 503 while the broker is gone or the store cannot be written,
200 again once they are back, and nothing sent meanwhile is lost."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiohttp
import aiomqtt
import pytest

from tests.conftest import daemon_config, wait_for
from tests.support.brokers import TestBroker
from tests.support.db import count


async def health(d) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}/healthz") as r:
            return r.status, await r.json()


async def admit(publisher, p, now):
    await publisher(f"{p}/w1/b1/admit", {"patient_id": "P1", "ts": now - 600})


async def test_broker_loss_is_503_and_the_daemon_resubscribes(tmp_path, make_daemon):
    # A broker that forgets sessions on restart: only a fresh SUBSCRIBE after the
    # reconnect can bring messages to the daemon again.
    broker = TestBroker(tmp_path / "b", persistent=False).start()
    try:
        d = await make_daemon(daemon_config(broker, tmp_path))
        assert await health(d) == (200, {"status": "ok", "problems": []})
        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: not d.connected, what="daemon notices")
        status, body = await health(d)
        assert status == 503 and body["problems"] == ["broker: not connected"]
        await asyncio.to_thread(broker.start)
        await wait_for(lambda: d.edge.subscribed.is_set(), what="reconnected, subscribed")
        assert (await health(d))[0] == 200
        now = time.time()
        async with aiomqtt.Client(broker.host, broker.port) as c:
            await c.publish(
                f"{d.cfg.prefix}/w1/b1/admit", f'{{"patient_id": "P1", "ts": {now - 60}}}', qos=1
            )
        await wait_for(
            lambda: count(d.cfg["storage.path"], "admissions") == 1,
            what="message after the restart stored (resubscribed)",
        )
    finally:
        broker.stop()


async def test_store_that_cannot_be_written_is_503_and_loses_nothing(make_daemon, publisher):
    d = await make_daemon(storage={"busy_timeout_s": 0.2})
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now)
    await wait_for(lambda: count(db, "admissions") == 1)
    lock = sqlite3.connect(db)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, "hr": 91})
        await wait_for(lambda: not d.pipeline.store_ok, what="write failure noticed")
        status, body = await health(d)
        assert status == 503
        assert body["problems"][0].startswith("store: not writable (OperationalError")
    finally:
        lock.rollback()
        lock.close()
    await wait_for(lambda: count(db, "observations") == 1, what="retried and stored")
    await wait_for(lambda: d.pipeline.store_ok)
    assert (await health(d))[0] == 200
    assert d.metrics.registry.get_sample_value("crswatch_store_errors_total") >= 1


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_both_protocol_versions_work(tmp_path, make_daemon, publisher, broker, protocol):
    if broker.kind != "mosquitto" and protocol == "5":
        pytest.skip("amqtt speaks MQTT 3.1.1 only")
    d = await make_daemon(daemon_config(broker, tmp_path, mqtt={"protocol": protocol}))
    await admit(publisher, d.cfg.prefix, time.time())
    await wait_for(lambda: count(d.cfg["storage.path"], "admissions") == 1)


async def test_a_full_outbox_drops_its_oldest_publication_loudly(make_daemon):
    """After a very long broker outage the outbox is full: the oldest MQTT copy of an alert
    gives way, and that is counted on /metrics and said on /healthz, never silent."""
    d = await make_daemon()
    d.edge.subscribed.clear()  # the publisher waits, as while the broker is away
    d.outbox.limit = 2
    for n in range(3):
        d.outbox.put(f"crs/w1/alerts/{n}", b"{}")
    assert [m[0] for m in d.outbox.queue] == ["crs/w1/alerts/1", "crs/w1/alerts/2"]
    assert d.metrics.registry.get_sample_value("crswatch_publish_dropped_total") == 1
    status, body = await health(d)
    assert status == 503
    assert any("1 publication(s) dropped" in p for p in body["problems"])
    d.edge.subscribed.set()


async def test_connected_from_the_connack_while_the_suback_is_pending(
    tmp_path, broker, monkeypatch
):
    """The broker accepted the connection; the SUBACK is still to come (behind a big
    backlog it comes tens of seconds later). The daemon is connected: /healthz 200, the
    metric 1, no broker alert; only crswatch_broker_subscribed says 0 until it comes."""
    from dashboard.web import setup as setup_dashboard
    from monitor.daemon import Daemon

    release = asyncio.Event()
    real_subscribe = aiomqtt.Client.subscribe

    async def late_subscribe(self, *args, **kwargs):
        await release.wait()  # the SUBACK has not come yet
        return await real_subscribe(self, *args, **kwargs)

    monkeypatch.setattr(aiomqtt.Client, "subscribe", late_subscribe)
    d = Daemon(daemon_config(broker, tmp_path), routes=setup_dashboard)
    await d.start()
    try:
        sample = d.metrics.registry.get_sample_value
        await wait_for(lambda: d.connected, what="connected before the SUBACK")
        assert not d.edge.subscribed.is_set()
        assert await health(d) == (200, {"status": "ok", "problems": []})
        assert sample("crswatch_broker_connected") == 1
        assert sample("crswatch_broker_subscribed") == 0
        d.alerts.tick(d.connected, True, "", d.faults())
        assert not [a for a in d.alerts.active() if a["kind"] == "broker"]
        release.set()
        await wait_for(d.edge.subscribed.is_set, what="subscribed")
        assert sample("crswatch_broker_subscribed") == 1
    finally:
        release.set()
        await d.stop()


async def test_a_backlog_is_drained_connected(tmp_path, broker, make_daemon):
    """A persistent session's queued readings arrive right behind the CONNACK, before the
    SUBACK: the daemon receives every one of them connected (it said "not connected"
    through a whole drain when connected meant subscribed)."""
    from dashboard.web import setup as setup_dashboard
    from monitor.daemon import Daemon

    if broker.kind != "mosquitto":
        pytest.skip("needs a broker that queues for an offline session (Mosquitto)")
    own = TestBroker(tmp_path / "own").start()
    try:
        cfg = daemon_config(own, tmp_path)
        first = await make_daemon(cfg)  # the session and its subscriptions
        await first.stop()
        async with aiomqtt.Client(own.host, own.port) as c:
            for i in range(300):
                await c.publish(
                    f"{cfg.prefix}/w1/b1/vitals", b'{"ts":%d,"hr":70}' % (1000 + i), qos=1
                )
        seen: list[bool] = []

        class Watched(Daemon):
            def _on_message(self, topic, payload, mid, qos, conn) -> None:
                seen.append(self.connected)
                super()._on_message(topic, payload, mid, qos, conn)

        d = Watched(cfg, routes=setup_dashboard)
        await d.start()
        try:
            await wait_for(lambda: len(seen) >= 300, what="the backlog received")
            assert all(seen), f"{seen.count(False)} of {len(seen)} received 'not connected'"
        finally:
            await d.stop()
    finally:
        own.stop()
