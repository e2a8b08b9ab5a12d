"""Nothing acknowledged is lost: the daemon killed mid-stream, the broker restarted
mid-stream. The daemon runs as a real process (`main.py run`), as in production."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiomqtt
import pytest

from tests.brokers import ROOT, TestBroker
from tests.conftest import wait_for
from tests.dbutil import count, query

N = 1000


def write_config(path, broker: TestBroker, db, prefix="dur", client_id="crswatch-dur"):
    path.write_text(f"""
[mqtt]
host = "127.0.0.1"
port = {broker.port}
protocol = "{broker.protocol}"
topic_prefix = "{prefix}"
client_id = "{client_id}"
reconnect_min_s = 0.1
reconnect_max_s = 1.0
[storage]
path = "{db}"
[http]
port = 0
""")


async def daemon_online(broker, prefix: str) -> None:
    """Wait for the daemon's retained `online` (sent once it has subscribed)."""
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(f"{prefix}/_daemon/status", qos=1)
        async with asyncio.timeout(30):
            async for m in c.messages:
                if m.payload == b"online":
                    return


def start_daemon(cfg_path, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", "--config",
                             str(cfg_path)], cwd=ROOT, stdout=log, stderr=log)


async def publish_all(broker, topic_of, payloads, sent: list, client_id="dev-1"):
    """A device that publishes every payload at QoS 1, reconnecting and resending until
    each one is acknowledged by the broker (as a real device library does)."""
    i = 0
    while i < len(payloads):
        try:
            async with aiomqtt.Client(broker.host, broker.port, identifier=client_id,
                                      clean_session=False, timeout=5) as c:
                while i < len(payloads):
                    await c.publish(topic_of(i), payloads[i], qos=1, timeout=5)
                    i += 1
                    sent.append(i)
                    if i % 50 == 0:
                        await asyncio.sleep(0.01)  # a stream, not one burst
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)


def readings(now: float) -> list[bytes]:
    return [(f'{{"ts": {now - N + i:.1f}, "hr": {60 + i % 50}, "spo2": 97}}').encode()
            for i in range(N)]


async def admit_bed(broker, prefix, now):
    async with aiomqtt.Client(broker.host, broker.port, identifier="ehr") as c:
        await c.publish(f"{prefix}/w1/b1/admit",
                        f'{{"patient_id": "P1", "ts": {now - 2 * N}}}', qos=1)


async def test_sigkill_mid_stream_loses_nothing_and_stores_once(broker, tmp_path):
    cfg, db = tmp_path / "config.toml", tmp_path / "crswatch.db"
    write_config(cfg, broker, db)
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        await daemon_online(broker, "dur")
        now = time.time()
        await admit_bed(broker, "dur", now)
        sent: list = []
        pub = asyncio.create_task(publish_all(broker, lambda i: "dur/w1/b1/vitals",
                                              readings(now), sent))
        await wait_for(lambda: count(db, "observations") >= 200, what="200 stored")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        killed_at = count(db, "observations")
        assert killed_at < N, "the kill came too late to prove anything"
        await pub  # the device goes on publishing while the daemon is dead
        daemon = start_daemon(cfg, tmp_path / "daemon.log")
        await wait_for(lambda: count(db, "observations") >= N, timeout=60, what="all stored")
        await asyncio.sleep(1.0)  # any straggling redelivery would show now
        assert count(db, "observations") == N
        assert query(db, "SELECT count(DISTINCT ts) FROM observations") == [(N,)]
        assert count(db, "rejections") == 0  # redeliveries are duplicates, not conflicts
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)


@pytest.mark.skipif(os.environ.get("CRSWATCH_BROKER") == "amqtt",
                    reason="amqtt keeps sessions in memory only")
async def test_broker_restart_mid_stream_loses_nothing(tmp_path):
    broker = TestBroker(tmp_path / "broker").start()
    if broker.kind != "mosquitto":
        broker.stop()
        pytest.skip("needs a broker that persists sessions across restarts (Mosquitto)")
    cfg, db = tmp_path / "config.toml", tmp_path / "crswatch.db"
    write_config(cfg, broker, db)
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        await daemon_online(broker, "dur")
        now = time.time()
        await admit_bed(broker, "dur", now)
        sent: list = []
        pub = asyncio.create_task(publish_all(broker, lambda i: "dur/w1/b1/vitals",
                                              readings(now), sent))
        await wait_for(lambda: len(sent) >= 300, what="300 published")
        await asyncio.to_thread(broker.restart)
        await pub
        await wait_for(lambda: count(db, "observations") >= N, timeout=60, what="all stored")
        await asyncio.sleep(1.0)
        assert count(db, "observations") == N
        assert daemon.poll() is None  # it rode the restart out
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)
        broker.stop()
