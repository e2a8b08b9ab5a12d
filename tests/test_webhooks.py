"""Webhooks to pagers: signed, retried, dead-lettered, and never blocking each other.
Receivers are real HTTP servers on this machine."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiohttp import web

from monitor.outputs.webhooks import Target, Webhooks, sign, verify
from tests.conftest import daemon_config, wait_for

SECRET = "test-secret"


class Receivers:
    """/ok records what it gets; /fail always answers 500; /hang never answers in time."""

    def __init__(self):
        self.got: list[tuple[dict, bool, dict]] = []
        self.failures = 0

    async def ok(self, request):
        body = await request.read()
        good = verify(
            SECRET,
            body,
            request.headers["X-CRSWatch-Timestamp"],
            request.headers["X-CRSWatch-Signature"],
        )
        self.got.append((orjson.loads(body), good, dict(request.headers)))
        return web.Response(text="ok")

    async def fail(self, request):
        self.failures += 1
        return web.Response(status=500)

    async def hang(self, request):
        await asyncio.sleep(3)
        return web.Response(text="late")


@pytest.fixture
async def receivers():
    r = Receivers()
    app = web.Application()
    app.router.add_post("/ok", r.ok)
    app.router.add_post("/fail", r.fail)
    app.router.add_post("/hang", r.hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield r
    await runner.cleanup()


async def test_signed_retried_dead_lettered_and_independent(receivers):
    dead: list[dict] = []
    hooks = Webhooks(
        clock=time.time, dead_letter=dead.append, attempts=3, first_delay_s=0.01, timeout_s=1.0
    )
    try:
        hooks.send(Target("hang", f"{receivers.url}/hang", SECRET), {"id": "a0"})
        hooks.send(Target("fail", f"{receivers.url}/fail", SECRET), {"id": "a1", "event": "raised"})
        hooks.send(Target("pager", f"{receivers.url}/ok", SECRET), {"id": "a2"})
        await wait_for(lambda: receivers.got, what="the healthy receiver served")
        assert len(hooks.tasks) >= 1  # the hanging receiver is still being tried
        body, signed, headers = receivers.got[0]
        assert body == {"id": "a2"} and signed
        await wait_for(lambda: dead and dead[0]["alert_id"] == "a1", what="dead letter")
        assert receivers.failures == 3
        assert dead[0]["receiver"] == "fail" and dead[0]["error"] == "HTTP 500"
        assert dead[0]["event"] == "raised"
    finally:
        await hooks.close()


async def test_a_forged_signature_does_not_verify():
    body = b'{"id": "x"}'
    assert not verify(SECRET, body, "1.0", "sha256=" + "0" * 64)
    assert not verify("other", body, "1.0", sign(SECRET, body, "1.0"))
    assert verify(SECRET, body, "1.0", sign(SECRET, body, "1.0"))


async def test_the_daemon_pages_by_webhook_and_mqtt_when_tier_2_is_raised(
    broker, tmp_path, make_daemon, publisher, listen, receivers
):
    cfg = daemon_config(
        broker,
        tmp_path,
        alerts={
            "receivers": {
                "physician_on_call": {
                    "channels": ["dashboard", "mqtt", "webhook"],
                    "webhook": {"url": f"{receivers.url}/ok", "secret": SECRET},
                }
            }
        },
        http={"public_url": "https://crswatch.example"},
    )
    d = await make_daemon(cfg)
    p, now = d.cfg.prefix, time.time()
    async with listen(f"{p}/w1/alerts") as alerts:
        await publisher(f"{p}/w1/b1/admit", {"patient_id": "P7", "ts": now - 600})
        await publisher(
            f"{p}/w1/b1/vitals",
            {
                "ts": now - 60,
                "temp_c": 38.7,
                "hr": 104,
                "rr": 18,
                "spo2": 95,
                "sbp": 118,
                "map": 84,
                "acvpu": "A",
            },
        )
        await publisher(
            f"{p}/w1/b1/care",
            {"ts": now - 30, "type": "oxygen", "device": "nasal_cannula", "flow_lpm": 2},
        )
        await wait_for(
            lambda: [m for m in alerts.json() if m["kind"] == "crs" and m["tier"] == 2],
            what="tier 2 on MQTT",
        )
        await wait_for(
            lambda: [b for b, _, _ in receivers.got if b["kind"] == "crs" and b["tier"] == 2],
            what="tier 2 paged by webhook",
        )
    page = next(b for b, ok, _ in receivers.got if b["kind"] == "crs" and b["tier"] == 2)
    assert page["receiver"] == "physician_on_call" and page["event"] == "raised"
    assert page["link"] == f"https://crswatch.example/alerts/{page['id']}"
    assert "fever 38.7 C" in page["message"] and page["patient_id"] == "P7"
    assert all(ok for _, ok, _ in receivers.got)
