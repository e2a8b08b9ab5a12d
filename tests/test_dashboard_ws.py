"""/ws: a snapshot on connect, then live events; Origin and login checked; an overflowed
client is resynchronised; a client that stops reading never holds up the others."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest

from dashboard import ws as ws_module
from dashboard.core import DASH
from tests.support.dashboard import Client, admit, url

NORMAL = {"hr": 80, "rr": 14, "spo2": 97, "sbp": 122, "dbp": 76, "map": 91, "acvpu": "A"}


def ws_url(d) -> str:
    return url(d, "/ws").replace("http://", "ws://")


def origin(d) -> dict:
    return {"Origin": f"http://127.0.0.1:{d.http_port}"}


def unrolled(msg: dict) -> list[dict]:
    """The events of one message: bed states waiting together come as one."""
    return msg["states"] if msg["type"] == "states" else [msg]


async def next_of(ws, pred, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for a WebSocket message")
        for msg in unrolled(await ws.receive_json(timeout=left)):
            if pred(msg):
                return msg


async def test_snapshot_then_state_event_when_a_reading_arrives(make_daemon, publisher):
    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        await admit(publisher, p, "w1", "b1", "P1", now)
        await publisher(f"{p}/w1/b1/vitals", {"ts": now - 30, **NORMAL, "temp_c": 37.0})
        async with c.session.ws_connect(ws_url(d), headers=origin(d)) as ws:
            snap = await ws.receive_json(timeout=10)
            assert snap["type"] == "snapshot" and snap["resync"] is False
            assert isinstance(snap["beds"], list) and isinstance(snap["alerts"], list)
            await publisher(f"{p}/w1/b1/vitals", {"ts": now - 2, "temp_c": 39.2})
            # the new state and the fever's alert (tier 1), in either order (alerts go
            # before the states waiting with them)
            event = alert = None
            while event is None or alert is None:
                msg = await next_of(ws, lambda m: m["type"] in ("state", "alert"))
                if msg["type"] == "alert":
                    alert = msg
                elif msg["state"]["vitals"].get("temp_c", {}).get("value") == 39.2:
                    event = msg
            assert event["ward"] == "w1" and event["bed"] == "b1"
            assert event["state"]["patient_id"] == "P1"
            assert alert["alert"]["patient_id"] == "P1"
    finally:
        await c.close()


async def test_origin_and_login_are_checked(make_daemon):
    d = await make_daemon()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        for headers in ({"Origin": "http://evil.example"}, {}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await c.session.ws_connect(ws_url(d), headers=headers)
            assert e.value.status == 403
        async with aiohttp.ClientSession() as anonymous:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await anonymous.ws_connect(ws_url(d), headers=origin(d))
            assert e.value.status == 401
            # an API client with a bearer token needs no Origin
            bearer = {"Authorization": f"Bearer {c.info['token']}"}
            async with anonymous.ws_connect(ws_url(d), headers=bearer) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def live(d):
    """A nurse's feed, past its first snapshot, its sender waiting for events."""
    c = await Client.as_user(d, "nina", "nurse")
    try:
        async with c.session.ws_connect(ws_url(d), headers=origin(d)) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
            await asyncio.sleep(0.1)
            yield ws
    finally:
        await c.close()


async def test_an_overflowed_client_gets_a_fresh_snapshot(make_daemon):
    d = await make_daemon()
    async with live(d) as ws:
        for i in range(d.hub.maxsize + 5):  # no await: the sender cannot keep up
            d.hub.publish({"type": "noise", "i": i})
        msg = await next_of(ws, lambda m: m["type"] == "snapshot", timeout=10)
        assert msg["resync"] is True


async def test_a_client_that_stops_reading_does_not_delay_the_others(
    make_daemon, monkeypatch, caplog
):
    monkeypatch.setattr(ws_module, "SEND_TIMEOUT_S", 1.0)
    d = await make_daemon()
    c = await Client.as_user(d, "nina", "nurse")
    stuck_session = aiohttp.ClientSession(cookie_jar=c.session.cookie_jar)
    try:
        stuck = await stuck_session.ws_connect(ws_url(d), headers=origin(d), max_msg_size=0)
        async with c.session.ws_connect(ws_url(d), headers=origin(d)) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
            blob = "x" * 50_000
            n, got = 400, 0  # 20 MB: far more than the stuck client's socket buffers hold
            started = time.monotonic()
            for i in range(n):
                d.hub.publish({"type": "noise", "i": i, "blob": blob})
                if i % 20 == 19:
                    await asyncio.sleep(0.005)
            while got < n:
                msg = await ws.receive_json(timeout=10)
                if msg["type"] == "noise":
                    got += 1
            assert time.monotonic() - started < 8
        # the stuck client was closed by the server once a send timed out
        await asyncio.wait_for(_closed(d), 15)
        assert "WebSocket client too slow" in caplog.text
        await stuck.close()
    finally:
        await stuck_session.close()
        await c.close()


async def _closed(d):
    dash = d.http.app[DASH]
    while dash.sockets:
        await asyncio.sleep(0.05)


async def test_an_alert_overtakes_the_bed_states_waiting_with_it(make_daemon):
    """Every bed of a ward changing at once queues a state for each: the alert queued
    after them goes out before those still waiting (alerts first, each kind in order)."""
    d = await make_daemon()
    async with live(d) as ws:
        n = 200
        for i in range(n):  # no await: all queued before the sender runs again
            d.hub.publish({"type": "state", "ward": "w1", "bed": f"b{i}", "state": {}})
        d.hub.publish({"type": "alert", "event": "raised", "alert": {"id": "a1"}})
        d.hub.publish({"type": "alert", "event": "raised", "alert": {"id": "a2"}})
        seen: list[str] = []
        messages = 0
        while len([x for x in seen if x.startswith("b")]) < n:
            messages += 1
            for msg in unrolled(await ws.receive_json(timeout=10)):
                if msg["type"] == "state":
                    seen.append(msg["bed"])
                elif msg["type"] == "alert":
                    seen.append(msg["alert"]["id"])
        alerts = [i for i, x in enumerate(seen) if x.startswith("a")]
        assert [seen[i] for i in alerts] == ["a1", "a2"]  # in the order raised
        assert alerts[-1] <= 2, seen[:5]  # at most the state taken first went before
        beds = [x for x in seen if x.startswith("b")]
        assert beds == [f"b{i}" for i in range(n)]  # states in order, none lost
        # the states waiting together went together: a few messages, not one a bed
        assert messages <= 6, messages
