"""The demo stays honest (issue 13): its simulated clock changes pace without jumping, the
pacer slows down rather than let the daemon fall behind, a restart is a clean new ward,
busy ports are said, a login lasts a shift of wall time on a simulated clock, and an alert
publication that fails is counted and shown on /metrics and /healthz, then delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import pytest

from commands.demo import DEMO_USERS, fresh_ward, pick_port
from commands.demo_pace import Pacing, behind, next_speed, status_line
from devices.clock import SimClock
from monitor.store.accounts import check
from tests.conftest import Listener, daemon_config, wait_for
from tests.support.brokers import TestBroker, free_port
from tests.support.dashboard import Client

T0 = 1_796_000_000.0


def test_sim_clock_changes_pace_without_jumping():
    wall = [1000.0]
    clock = SimClock(T0, 120, wall_start=1000.0, wall=lambda: wall[0])
    wall[0] = 1010.0
    assert clock() == T0 + 1200
    clock.set_speed(60)
    assert clock() == T0 + 1200 and clock.speed == 60
    wall[0] = 1012.0
    assert clock() == T0 + 1320
    assert clock.wall_at(T0 + 1380) == 1013.0
    assert clock.start_sim_ts == T0  # the simulation's start (every admission) stays
    with pytest.raises(ValueError):
        clock.set_speed(0)


def test_the_pace_slows_when_behind_and_recovers_step_by_step():
    stale = 60.0
    # far behind and still falling behind: slower, never below 1x
    assert next_speed(120, 120, 40, stale, growing=True, calm_for=0) == pytest.approx(84)
    assert next_speed(1.2, 120, 40, stale, growing=True, calm_for=0) == 1.0
    # behind but catching up: unchanged
    assert next_speed(84, 120, 40, stale, growing=False, calm_for=0) == 84
    # keeping up for long enough: one step faster, never above what was asked
    assert next_speed(84, 120, 5, stale, growing=False, calm_for=3) == 84
    assert next_speed(84, 120, 5, stale, growing=False, calm_for=10) == pytest.approx(105)
    assert next_speed(110, 120, 5, stale, growing=False, calm_for=10) == 120
    assert behind(T0, None, 5) is None
    assert behind(T0, T0 - 3, 5) == 0.0
    assert behind(T0, T0 - 65, 5) == 60.0


def test_a_restart_is_a_clean_new_ward(tmp_path):
    assert fresh_ward(tmp_path) is None
    for name in ("crswatch.db", "crswatch.db-wal"):
        (tmp_path / name).write_text(name)
    said = fresh_ward(tmp_path)
    assert "clean new ward" in said and str(tmp_path / "previous") in said
    assert not (tmp_path / "crswatch.db").exists()
    assert (tmp_path / "previous" / "crswatch.db-wal").read_text() == "crswatch.db-wal"


def test_a_busy_port_is_said():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        port, note = pick_port("127.0.0.1", busy, "HTTP", "--http-port")
        assert port != busy and f"HTTP port {busy} is busy" in note and str(port) in note
    free = free_port()
    assert pick_port("127.0.0.1", free, "MQTT", "--port") == (free, None)


async def test_a_login_lasts_on_the_wall_clock_under_a_fast_simulated_clock(make_daemon):
    # 100,000 simulated seconds a second: a session timed on this clock would be over
    # (12 h) within half a second of wall time
    d = await make_daemon(clock=SimClock(time.time(), 100_000))
    c = await Client.as_user(d, "nina", "nurse")
    try:
        await asyncio.sleep(1.0)
        status, body = await c.get("/api/me")
        assert status == 200 and body["name"] == "nina"
    finally:
        await c.close()


async def test_the_status_line_says_pace_lag_and_health(make_daemon):
    d = await make_daemon(clock=SimClock(time.time(), 60))
    line = status_line(d, Pacing(asked=120, behind_s=42.0), "30 Nov 14:05 UTC")
    assert "60x (slowed from 120x" in line and "behind 42 s" in line
    assert "health ok" in line and "publish failures 0" in line


async def metric(d, name: str) -> float:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}/metrics") as r:
            text = await r.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name))


async def health(d) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}/healthz") as r:
            return r.status, await r.json()


@pytest.mark.skipif(
    os.environ.get("CRSWATCH_BROKER") == "amqtt", reason="freezes a Mosquitto process"
)
async def test_a_failed_alert_publication_is_counted_shown_and_retried(tmp_path, make_daemon):
    broker = TestBroker(tmp_path / "b").start()
    try:
        d = await make_daemon(daemon_config(broker, tmp_path))
        topic = f"{d.cfg.prefix}/w1/alerts"
        async with Listener(broker, topic) as heard:
            broker.proc.send_signal(signal.SIGSTOP)  # the broker hangs: publications time out
            try:
                d.outbox.put(topic, b'{"alert": "test"}')
                await wait_for(
                    lambda: d.publish_failing_since is not None, 30, what="a failed publication"
                )
                assert await metric(d, "crswatch_publish_failures_total") >= 1
                assert await metric(d, "crswatch_publish_waiting") == 1
                status, body = await health(d)
                assert status == 503
                assert any(p.startswith("mqtt publish: failing") for p in body["problems"])
            finally:
                broker.proc.send_signal(signal.SIGCONT)
            await wait_for(lambda: heard.json("/alerts"), 30, what="the alert delivered")
            assert heard.json("/alerts")[0] == {"alert": "test"}
            await wait_for(lambda: d.publish_failing_since is None, 30, what="recovered")
            assert await metric(d, "crswatch_publish_waiting") == 0
    finally:
        await asyncio.to_thread(broker.stop)


def test_the_demo_log_throttles_a_flood_of_broker_tracebacks():
    import logging

    from commands.demo import Throttle

    now = [0.0]
    throttle = Throttle(every_s=60, clock=lambda: now[0])

    def record(msg="connection lost"):
        try:
            raise ConnectionResetError("peer gone")
        except ConnectionResetError:
            import sys

            return logging.LogRecord("amqtt.broker", logging.ERROR, "", 0, msg, (), sys.exc_info())

    first = record()
    assert throttle.filter(first) and first.exc_info is None
    assert "ConnectionResetError; traceback left out" in first.getMessage()
    assert [throttle.filter(record()) for _ in range(500)] == [False] * 500
    assert throttle.filter(record("another complaint"))
    now[0] = 61.0
    later = record()
    assert throttle.filter(later) and "[500 more like it]" in later.getMessage()


def test_the_demo_logins_pass_the_password_policy():
    # the demo creates its accounts through the same checks as `user add`: a demo password
    # the policy refuses stops the demo at start (it did: "password contains the user name")
    for name, role, password in DEMO_USERS:
        check(name, role, password)
