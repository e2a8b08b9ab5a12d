"""The shipped broker set-up (deploy/mosquitto/), run as it is: TLS only, no anonymous
client, one account per device and service (made by `main.py broker add`), a deny-by-
default ACL, the client id forced to the user name, payload and packet limits.

With MQTT 3.1.1 Mosquitto drops a refused publish silently (it still acknowledges it), so
each refusal is proved by what never arrives: a spy allowed to read every topic receives
the allowed message sent after the refused ones but none of them, and the daemon stores
nothing of them."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import time

import aiomqtt
import orjson
import pytest

from commands import broker as broker_cmd
from tests.conftest import daemon_config, wait_for
from tests.support.brokers import ROOT, locked_broker
from tests.support.db import count
from tests.test_broker_auth import make_certs
from tests.test_health import health

pytestmark = pytest.mark.skipif(
    not (shutil.which("mosquitto") and shutil.which("openssl")),
    reason="needs Mosquitto and openssl",
)
USERS = {  # name: (role, ward, bed)
    "crswatch": ("daemon", None, None),
    "ehr": ("ehr", None, None),
    "dashboard": ("dashboard", None, None),
    "pager": ("pager", None, None),
    "dev.w1.b1": ("device", "w1", "b1"),
    "dev.w1.b2": ("device", "w1", "b2"),
}


def password(user: str) -> str:
    return f"{user}-correct-horse"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("locked-certs"))


@pytest.fixture
def locked(tmp_path, certs):
    ca, cert, key = certs
    acl = tmp_path / "acl"
    shutil.copy(ROOT / "deploy" / "mosquitto" / "acl", acl)
    for name, (role, ward, bed) in USERS.items():
        broker_cmd.add(
            name,
            role,
            password(name),
            passwd_file=tmp_path / "passwd",
            acl_file=acl,
            prefix="crs",
            ward=ward,
            bed=bed,
        )
    # a test-only spy that may read everything, to see what the broker lets through
    broker_cmd.upsert_acl(acl, "spy", ["topic read crs/#"], "test spy")
    broker_cmd.upsert_password(tmp_path / "passwd", "spy", password("spy"))
    files = {
        "ca.crt": ca,
        "server.crt": cert,
        "server.key": key,
        "passwd": tmp_path / "passwd",
        "acl": acl,
    }
    b = locked_broker(tmp_path / "b", files).start()
    b.ca = ca
    yield b
    b.stop()


def tls(ca) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def client(b, user: str | None, identifier: str = "", **kw) -> aiomqtt.Client:
    auth = {"username": user, "password": password(user)} if user else {}
    return aiomqtt.Client(
        b.host,
        b.port,
        identifier=identifier or None,
        tls_context=tls(b.ca),
        timeout=5,
        **auth,
        **kw,
    )


class Reader:
    """A logged-in subscriber keeping what it receives."""

    def __init__(self, b, user: str, *topics: str):
        self.c, self.topics, self.got = client(b, user), topics, []

    async def __aenter__(self):
        await self.c.__aenter__()
        for t in self.topics:
            await self.c.subscribe(t, qos=1)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        async for m in self.c.messages:
            self.got.append((m.topic.value, m.payload))

    def topics_seen(self) -> set[str]:
        return {t for t, _ in self.got}

    async def __aexit__(self, *exc):
        self.task.cancel()
        await self.c.__aexit__(None, None, None)


def locked_daemon_config(b, tmp_path):
    return daemon_config(
        b,
        tmp_path,
        mqtt={
            "topic_prefix": "crs",
            "client_id": "crswatch",
            "username": "crswatch",
            "password": password("crswatch"),
            "tls_ca": str(b.ca),
        },
    )


async def test_the_daemon_works_through_it_and_the_broker_refuses_the_rest(
    locked, tmp_path, make_daemon
):
    d = await make_daemon(locked_daemon_config(locked, tmp_path))
    assert (await health(d))[0] == 200
    db, now = d.cfg["storage.path"], time.time()
    async with (
        Reader(locked, "spy", "crs/#") as spy,
        Reader(locked, "dashboard", "crs/+/+/state", "crs/+/+/vitals") as dash,
        client(locked, "ehr") as ehr,
        client(locked, "dev.w1.b1") as dev,
    ):
        for bed in ("b1", "b2"):
            await ehr.publish(
                f"crs/w1/{bed}/admit", orjson.dumps({"patient_id": bed, "ts": now - 600}), qos=1
            )
        await wait_for(lambda: count(db, "admissions") == 2, what="admitted through the broker")
        await dev.publish("crs/w1/b1/vitals", orjson.dumps({"ts": now - 5, "hr": 80}), qos=1)
        await wait_for(lambda: count(db, "observations") == 1, what="a device's reading stored")
        await wait_for(
            lambda: "crs/w1/b1/state" in dash.topics_seen(), what="state to the dashboard"
        )
        # what a device may not do: another bed, outbound topics, admissions, care
        refused = {
            "crs/w1/b2/vitals": {"ts": now - 4, "hr": 150},
            "crs/w1/b1/state": {"ward": "w1", "bed": "b1", "crs_grade": 0, "spoofed": True},
            "crs/w1/alerts": {"event": "resolved", "spoofed": True},
            "crs/_daemon/status": "spoofed offline",
            "crs/rejected": {"spoofed": True},
            "crs/w1/b1/discharge": {"patient_id": "b1", "ts": now - 3},
            "crs/w1/b1/care": {"ts": now - 3, "type": "medication", "drug": "tocilizumab"},
        }
        for topic, payload in refused.items():
            await dev.publish(topic, orjson.dumps(payload), qos=1)
        await dev.publish("crs/w1/b1/vitals", orjson.dumps({"ts": now - 2, "hr": 81}), qos=1)
        await wait_for(lambda: count(db, "observations") == 2, what="the allowed reading after")
        await wait_for(
            lambda: (
                spy.got.count(("crs/w1/b1/vitals", orjson.dumps({"ts": now - 2, "hr": 81}))) == 1
            )
        )
        assert not any(b"spoofed" in p for _, p in spy.got + dash.got)
        assert "crs/w1/b2/vitals" not in spy.topics_seen()
        assert count(db, "observations", "bed='b2'") == 0
        assert count(db, "care_events") == 0
        assert count(db, "admissions", "discharged_ts IS NULL") == 2
        assert count(db, "rejections") == 0  # refused by the broker: the daemon never saw them
        # the dashboard reads states, never the readings themselves
        assert not any(t.endswith("/vitals") for t in dash.topics_seen())

    # no anonymous client, no plain-text connection, no wrong password
    with pytest.raises(aiomqtt.MqttError):
        async with client(locked, None):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            locked.host, locked.port, username="ehr", password=password("ehr"), timeout=3
        ):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            locked.host,
            locked.port,
            username="crswatch",
            password="guess",
            tls_context=tls(locked.ca),
            timeout=3,
        ):
            pass
    assert d.connected and (await health(d))[0] == 200


async def test_nobody_can_take_the_daemons_session(locked, tmp_path, make_daemon):
    d = await make_daemon(locked_daemon_config(locked, tmp_path))
    session = d.edge.client
    for _ in range(5):  # a device asking for the daemon's client id, again and again
        with contextlib.suppress(aiomqtt.MqttError):
            async with client(locked, "dev.w1.b1", identifier="crswatch"):
                await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    assert d.edge.client is session and d.connected  # never dropped
    assert d.edge.session_problem() == "" and (await health(d))[0] == 200


async def test_oversized_payloads_are_refused_by_the_broker(locked, tmp_path, make_daemon):
    d = await make_daemon(locked_daemon_config(locked, tmp_path))
    db, now = d.cfg["storage.path"], time.time()
    async with client(locked, "ehr") as ehr, Reader(locked, "spy", "crs/#") as spy:
        await ehr.publish(
            "crs/w1/b1/admit", orjson.dumps({"patient_id": "P", "ts": now - 600}), qos=1
        )
        await wait_for(lambda: count(db, "admissions") == 1)
        async with client(locked, "dev.w1.b1") as dev:
            # over message_size_limit: acknowledged, and dropped by the broker
            big = orjson.dumps({"ts": now - 5, "hr": 80, "pad": "x" * 262_144})
            await dev.publish("crs/w1/b1/vitals", big, qos=1)
            await dev.publish("crs/w1/b1/vitals", orjson.dumps({"ts": now - 4, "hr": 82}), qos=1)
            await wait_for(lambda: count(db, "observations") == 1, what="the small one after")
        await wait_for(lambda: any(t.endswith("/vitals") for t, _ in spy.got))
        vitals = [p for t, p in spy.got if t.endswith("/vitals")]
        assert len(vitals) == 1 and len(vitals[0]) < 100  # the small one only
        assert count(db, "rejections") == 0
        # over max_packet_size: the sender's connection is closed before it is read whole
        with pytest.raises(aiomqtt.MqttError):
            async with client(locked, "dev.w1.b1") as dev:
                await dev.publish("crs/w1/b1/vitals", b"x" * 4_000_000, qos=1, timeout=5)
                await dev.publish("crs/w1/b1/vitals", b"{}", qos=1, timeout=5)
    assert d.connected and count(db, "observations") == 1
