"""Every long-running task of the daemon is supervised: a failure injected into each loop
is logged with its traceback, raises a tier-3 alert of the daemon's own, turns /healthz
to 503 naming the task, and the task is restarted and does its work again; a task that
keeps failing makes `run` exit with status 1. systemd hears READY=1 and WATCHDOG=1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from commands import run as run_command
from monitor import daemon as daemon_module
from monitor.daemon import Daemon
from monitor.ops import gcpolicy
from tests.conftest import daemon_config, wait_for
from tests.support.brokers import TestBroker
from tests.support.db import count
from tests.test_health import health

FAST = {
    "backoff_min_s": 0.05,
    "backoff_max_s": 0.2,
    "healthy_after_s": 1.0,
}


def fail_once(monkeypatch, obj, attr: str, what: str) -> list[int]:
    """Make obj.attr raise RuntimeError the first time it is called; returns the calls."""
    real = getattr(obj, attr)
    calls: list[int] = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"injected into {what}")
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, attr, wrapper)
    return calls


async def see_failure_alert_and_recovery(d: Daemon, name: str) -> None:
    def failing():
        return any(
            p.startswith(f"task {name}: failed (RuntimeError: injected") for p in d.problems()
        )

    await wait_for(failing, what=f"{name} failure on /healthz")
    status, body = await health(d)
    assert status == 503
    assert any(p.startswith(f"task {name}: failed") for p in body["problems"])
    alert = next(a for a in d.alerts.active() if a["kind"] == f"task:{name}")
    assert (alert["tier"], alert["ward"], alert["bed"]) == (3, "_daemon", "_daemon")
    assert "RuntimeError: injected" in alert["message"]
    assert d.metrics.registry.get_sample_value(
        "crswatch_task_failures_total", {"task": name}
    ) == pytest.approx(1)
    await wait_for(lambda: not d.problems(), what=f"{name} recovered")
    assert (await health(d))[0] == 200
    assert not d.supervisor.tasks[name].done()


@pytest.mark.parametrize(
    "loop", ["pipeline", "publisher", "state", "tick", "heartbeat", "retention", "gc"]
)
async def test_a_failing_loop_is_alerted_503_restarted_and_works_again(
    loop, tmp_path, make_daemon, broker, publisher, listen, monkeypatch, caplog
):
    monkeypatch.setattr(Daemon, "heartbeat_s", 0.2)
    monkeypatch.setattr(daemon_module, "RETENTION_EVERY_S", 0.2)
    monkeypatch.setattr(gcpolicy, "configure", lambda observe: None)  # keep the suite's GC
    monkeypatch.setattr(gcpolicy, "full_and_freeze", lambda: None)
    d = await make_daemon(supervise=FAST)
    p = d.cfg.prefix
    now = time.time()
    async with listen(f"{p}/rejected") as rejected:
        if loop == "pipeline":
            calls = fail_once(monkeypatch, d.ward, "apply", loop)
            await publisher(f"{p}/w1/b1/admit", {"patient_id": "P1", "ts": now - 60})
        elif loop == "publisher":
            calls = fail_once(monkeypatch, d.edge, "publish", loop)
            await publisher(f"{p}/w1/b1/vitals", b"not json")
        elif loop == "state":
            calls = fail_once(monkeypatch, d.ward, "reassess_touched", loop)
        elif loop == "tick":
            calls = fail_once(monkeypatch, d.pipeline, "flush_flood", loop)
        elif loop == "heartbeat":
            calls = fail_once(monkeypatch, d.pipeline, "beat", loop)
        elif loop == "retention":  # runs in the writer thread: the failure crosses it
            calls = fail_once(monkeypatch, daemon_module, "prune_rejections", loop)
        else:
            calls = fail_once(monkeypatch, gcpolicy, "configure", loop)
            d.supervise("gc", lambda: run_command.manage_gc(d))
        with caplog.at_level(logging.ERROR, logger="crswatch.supervisor"):
            await see_failure_alert_and_recovery(d, loop)
        assert len(calls) >= 2  # called again by the restarted loop
        # logged with its traceback
        record = next(r for r in caplog.records if f"task {loop} failed" in r.getMessage())
        assert record.exc_info and "injected" in str(record.exc_info[1])
        # and what the loop is for is done again
        if loop == "pipeline":
            assert count(d.cfg["storage.path"], "admissions") == 1
            await publisher(f"{p}/w1/b1/vitals", {"ts": time.time(), "hr": 80})
            await wait_for(lambda: count(d.cfg["storage.path"], "observations") == 1)
        if loop == "publisher":  # the rejection held while the publisher was down
            await wait_for(lambda: rejected.json(), what="rejection published")


async def test_mqtt_loop_failure_is_supervised(tmp_path, make_daemon, monkeypatch):
    broker = TestBroker(tmp_path / "b").start()
    try:
        d = await make_daemon(daemon_config(broker, tmp_path, supervise=FAST))
        calls = fail_once(monkeypatch, d.edge, "on_connect", "mqtt")
        await asyncio.to_thread(broker.restart)  # the edge reconnects: on_connect raises
        await see_failure_alert_and_recovery(d, "mqtt")
        assert len(calls) >= 2 and d.connected
    finally:
        broker.stop()


async def test_a_task_that_keeps_failing_makes_run_exit_1(broker, tmp_path, monkeypatch):
    monkeypatch.setattr(gcpolicy, "configure", lambda observe: None)
    monkeypatch.setattr(gcpolicy, "full_and_freeze", lambda: None)

    def always(self, now):
        raise RuntimeError("broken for good")

    monkeypatch.setattr("monitor.pipeline.Pipeline.flush_flood", always)
    cfg = daemon_config(broker, tmp_path, supervise={**FAST, "max_failures": 3})
    code = await asyncio.wait_for(run_command.run_until_signal(cfg), 60)
    assert code == 1


async def test_ready_and_watchdog_reach_the_notify_socket(tmp_path, make_daemon, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        d = await make_daemon()
        seen: list[str] = []

        def received() -> list[str]:
            try:
                while True:
                    seen.append(sock.recv(4096).decode())
            except BlockingIOError:
                pass
            return seen

        await wait_for(lambda: "READY=1" in received(), what="READY=1")
        await wait_for(lambda: received().count("WATCHDOG=1") >= 2, what="two WATCHDOG=1")
        # the watchdog comes from the state loop: stopped loop, no more watchdog
        await d.stop()
        assert "STOPPING=1" in received()
    finally:
        sock.close()
