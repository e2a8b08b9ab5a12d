"""Shared fixtures: a real broker for the session, a daemon per test (real SQLite file)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import aiomqtt
import orjson
import pytest
from hypothesis import settings

from dashboard.web import setup as setup_dashboard
from monitor import config
from monitor.clock import wall_clock
from monitor.daemon import Daemon
from tests.support.brokers import TestBroker

_ids = itertools.count()

# No timing assertions in tests (timings belong to benchmarks/): Hypothesis's per-example
# deadline (200 ms) fails property tests at random on a loaded, shared machine.
settings.register_profile("crswatch", deadline=None)
settings.load_profile("crswatch")


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = TestBroker(tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


def daemon_config(broker: TestBroker, tmp_path, **sections) -> config.Config:
    """A config of its own per test: its own topic prefix, client id and database."""
    n = next(_ids)
    data = {
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "protocol": broker.protocol,
            "topic_prefix": f"t{n}",
            "client_id": f"crswatch-test-{n}",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
        },
        "storage": {"path": str(tmp_path / "crswatch.db")},
        "http": {"port": 0},
        "state": {"publish_interval_s": 0.05},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return config.from_dict(data)


@pytest.fixture
async def make_daemon(broker, tmp_path):
    started: list[Daemon] = []

    async def make(cfg: config.Config | None = None, clock=None, **sections) -> Daemon:
        cfg = cfg or daemon_config(broker, tmp_path, **sections)
        d = Daemon(cfg, clock=clock or wall_clock, routes=setup_dashboard)
        await d.start()
        started.append(d)
        # connected comes at the CONNACK; messages published before the SUBACK of a
        # fresh session would not reach the daemon
        await wait_for(lambda: d.connected and d.edge.subscribed.is_set(), what="daemon subscribed")
        return d

    yield make
    for d in started:
        if not d.stop_event.is_set():
            await d.stop()


async def wait_for(cond: Callable[[], object], timeout: float = 20.0, what: str = "condition"):
    """Poll until cond() is truthy; fail with `what` after timeout (not a timing test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Listener:
    """Subscribes to topics and keeps every message received (topic, payload, retain)."""

    def __init__(self, broker: TestBroker, *topics: str):
        self.broker, self.topics = broker, topics
        self.messages: list[tuple[str, bytes, bool]] = []

    async def __aenter__(self):
        self.client = aiomqtt.Client(
            self.broker.host, self.broker.port, identifier=f"listener-{next(_ids)}"
        )
        await self.client.__aenter__()
        for t in self.topics:
            await self.client.subscribe(t, qos=1)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        async for m in self.client.messages:
            # amqtt 0.12 sometimes delivers a retained message of another topic on
            # subscribe: keep only what matches what we subscribed to.
            if any(m.topic.matches(t) for t in self.topics):
                self.messages.append((m.topic.value, m.payload, m.retain))

    def json(self, topic_suffix: str = "") -> list[dict]:
        return [orjson.loads(p) for t, p, _ in self.messages if t.endswith(topic_suffix) and p]

    async def __aexit__(self, *exc):
        self.task.cancel()
        await self.client.__aexit__(None, None, None)


@pytest.fixture
def listen(broker):
    return lambda *topics: Listener(broker, *topics)


@pytest.fixture
async def publisher(broker):
    client = aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{next(_ids)}")
    async with client:

        async def publish(topic: str, payload, qos: int = 1):
            if isinstance(payload, dict | list):
                payload = orjson.dumps(payload)
            await client.publish(topic, payload, qos=qos)

        yield publish


@pytest.fixture
async def browser():
    """Debian's Chromium, driven by Playwright (the browser tests skip where it is missing)."""
    from playwright.async_api import async_playwright

    from tests.support.browser import ARGS, CHROMIUM

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()
