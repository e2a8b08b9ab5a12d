"""Nothing acknowledged is lost: the daemon killed mid-stream, the broker restarted
mid-stream. The daemon runs as a real process (`main.py run`), as in production."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiomqtt
import pytest

from tests.conftest import wait_for
from tests.support.brokers import ROOT, TestBroker, free_port
from tests.support.db import count, query

N = 1000

# What these tests prove rests on the broker keeping a disconnected client's session.
# amqtt 0.12 queues nothing for an offline anonymous client (its broker.py says so), and
# keeps sessions in memory only: there, the tests would measure amqtt, not CRSWatch.
needs_session_broker = pytest.mark.skipif(
    TestBroker(Path("/tmp")).kind != "mosquitto",
    reason="needs a broker that keeps offline sessions (Mosquitto); amqtt does not",
)


def write_config(
    path, broker: TestBroker, db, prefix="dur", client_id="crswatch-dur", http_port=0, protocol=None
):
    path.write_text(f"""
[mqtt]
host = "127.0.0.1"
port = {broker.port}
protocol = "{protocol or broker.protocol}"
topic_prefix = "{prefix}"
client_id = "{client_id}"
reconnect_min_s = 0.1
reconnect_max_s = 1.0
[storage]
path = "{db}"
[http]
port = {http_port}
""")


async def daemon_online(broker, prefix: str) -> None:
    """Wait for the daemon's retained `online` (sent once it has subscribed)."""
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(f"{prefix}/_daemon/status", qos=1)
        async with asyncio.timeout(30):
            async for m in c.messages:
                if m.payload == b"online":
                    return


async def retained_status(broker, prefix: str) -> bytes:
    """The daemon's retained availability as a newcomer sees it (waits for the broker to
    notice a killed client: its socket closes at once, so the Will follows)."""
    async with asyncio.timeout(30):
        while True:
            async with aiomqtt.Client(broker.host, broker.port) as c:
                await c.subscribe(f"{prefix}/_daemon/status", qos=1)
                async for m in c.messages:
                    if m.payload == b"offline":
                        return m.payload
                    break
            await asyncio.sleep(0.1)


def start_daemon(cfg_path, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "run", "--config", str(cfg_path)],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )


async def publish_all(
    broker, topic_of, payloads, sent: list, client_id="dev-1", pace: float = 0.0002
):
    """A device that publishes every payload at QoS 1, reconnecting and resending until
    each one is acknowledged by the broker (as a real device library does)."""
    i = 0
    while i < len(payloads):
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, identifier=client_id, clean_session=False, timeout=5
            ) as c:
                while i < len(payloads):
                    await c.publish(topic_of(i), payloads[i], qos=1, timeout=5)
                    i += 1
                    sent.append(i)
                    await asyncio.sleep(pace)  # a stream, not one burst
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)


def readings(now: float) -> list[bytes]:
    return [
        (f'{{"ts": {now - N + i:.1f}, "hr": {60 + i % 50}, "spo2": 97}}').encode() for i in range(N)
    ]


async def admit_bed(broker, prefix, now):
    async with aiomqtt.Client(broker.host, broker.port, identifier="ehr") as c:
        await c.publish(
            f"{prefix}/w1/b1/admit", f'{{"patient_id": "P1", "ts": {now - 2 * N}}}', qos=1
        )


def received(port: int) -> float:
    """Vitals messages the daemon has received (from its /metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    m = re.search(r'crswatch_messages_received_total\{kind="vitals"\} (\S+)', text)
    return float(m.group(1)) if m else 0.0


@needs_session_broker
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_sigkill_mid_stream_loses_nothing_and_stores_once(broker, tmp_path, protocol):
    """Kill the daemon while a device streams 1,000 QoS 1 readings, at a moment when
    hundreds of them have been received but not committed (the test holds a lock on the
    database so commits wait). With acknowledgement on receipt they would be lost."""
    cfg, db = tmp_path / "config.toml", tmp_path / "crswatch.db"
    p = f"dur{protocol[0]}"
    http_port = free_port()
    write_config(
        cfg,
        broker,
        db,
        http_port=http_port,
        protocol=protocol,
        prefix=p,
        client_id=f"crswatch-dur-{protocol}",
    )
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    lock = None
    try:
        await daemon_online(broker, p)
        now = time.time()
        await admit_bed(broker, p, now)
        sent: list = []
        pub = asyncio.create_task(
            publish_all(broker, lambda i: f"{p}/w1/b1/vitals", readings(now), sent, pace=0.004)
        )
        await wait_for(lambda: count(db, "observations") >= 200, what="200 stored")
        lock = sqlite3.connect(db, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # commits now wait
        stored = lock.execute("SELECT count(*) FROM observations").fetchone()[0]
        await wait_for(
            lambda: received(http_port) >= stored + 200, what="200 received and not committed"
        )
        assert len(sent) < N, "the stream ended before the kill"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        lock.rollback()
        lock.close()
        lock = None
        assert count(db, "observations") == stored  # they really were not committed
        assert await retained_status(broker, p) == b"offline"  # the Last Will
        await pub  # the device went on publishing while the daemon was dead
        daemon = start_daemon(cfg, tmp_path / "daemon.log")
        await wait_for(lambda: count(db, "observations") >= N, timeout=60, what="all stored")
        await asyncio.sleep(1.0)  # any straggling redelivery would show now
        assert count(db, "observations") == N
        assert query(db, "SELECT count(DISTINCT ts) FROM observations") == [(N,)]
        # redeliveries are duplicates, not conflicts
        assert count(db, "rejections", "topic LIKE ?", f"{p}/%") == 0
    finally:
        if lock is not None:
            lock.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)


@needs_session_broker
async def test_broker_restart_mid_stream_loses_nothing(tmp_path):
    broker = TestBroker(tmp_path / "broker").start()
    cfg, db = tmp_path / "config.toml", tmp_path / "crswatch.db"
    write_config(cfg, broker, db)
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        await daemon_online(broker, "dur")
        now = time.time()
        await admit_bed(broker, "dur", now)
        sent: list = []
        pub = asyncio.create_task(
            publish_all(broker, lambda i: "dur/w1/b1/vitals", readings(now), sent)
        )
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
