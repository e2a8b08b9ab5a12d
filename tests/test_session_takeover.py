"""Another client connecting with the daemon's client id takes its persistent session:
the daemon detects it (MQTT 5 reason 0x8E; with 3.1.1 repeated disconnections right after
connecting) and says so: a tier-3 alert with the cause, and 503 on /healthz. The locked
broker configuration (deploy/mosquitto/) makes it impossible: tests/test_locked_broker.py."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from monitor.ingest import mqtt as edge_module
from tests.conftest import wait_for
from tests.test_health import health


@pytest.fixture(autouse=True)
def mosquitto_only(broker):
    if broker.kind != "mosquitto":
        pytest.skip("session takeover as Mosquitto does it")


def session_alert(d) -> dict | None:
    return next((a for a in d.alerts.active() if a["kind"] == "session"), None)


async def impostor_loop(broker, client_id: str, stop: asyncio.Event, **kwargs) -> None:
    """Another client using the daemon's client id, connecting again and again."""
    while not stop.is_set():
        client = aiomqtt.Client(broker.host, broker.port, identifier=client_id, **kwargs)
        with contextlib.suppress(aiomqtt.MqttError):
            async with client:
                await asyncio.sleep(0.3)
        await asyncio.sleep(0.3)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_an_impostor_with_the_daemons_client_id_is_detected(
    protocol, broker, make_daemon, monkeypatch
):
    monkeypatch.setattr(edge_module, "TAKEOVER_HOLD_S", 2.0)
    d = await make_daemon(mqtt={"protocol": protocol})
    if protocol == "5":
        kwargs = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": False}
    else:
        kwargs = {"clean_session": False}
    stop = asyncio.Event()
    task = asyncio.create_task(impostor_loop(broker, d.cfg["mqtt.client_id"], stop, **kwargs))
    try:
        await wait_for(lambda: d.edge.session_problem(), what="takeover detected")
        status, body = await health(d)
        assert status == 503
        problem = next(p for p in body["problems"] if p.startswith("session: taken over"))
        assert "times in a row" in problem and repr(d.cfg["mqtt.client_id"]) in problem
        alert = await wait_for(lambda: session_alert(d), what="session alert")
        assert (alert["tier"], alert["ward"]) == (3, "_daemon")
        assert "session takeover" in alert["message"]
    finally:
        stop.set()
        await task
    # the impostor gone, the daemon keeps its session; 200 once TAKEOVER_HOLD_S has passed
    await wait_for(lambda: d.connected and not d.problems(), what="recovered")
    assert (await health(d))[0] == 200


async def test_the_mqtt5_reason_session_taken_over_is_named(make_daemon):
    """Brokers that send DISCONNECT 0x8E (not Mosquitto 2.0.11) are believed at once."""
    d = await make_daemon()
    rc = ReasonCode(PacketTypes.DISCONNECT, identifier=0x8E)
    d.edge._check_takeover(aiomqtt.MqttCodeError(rc, "Unexpected disconnection"), 3600.0)
    assert "0x8E" in d.edge.session_problem()
    assert any(p.startswith("session: taken over") for p in d.problems())
    d.alerts.tick(d.connected, True, "", d.faults())
    assert session_alert(d)["tier"] == 3


async def test_a_long_connection_then_one_drop_is_not_a_takeover(broker, make_daemon):
    d = await make_daemon()
    e = aiomqtt.MqttCodeError(7, "Unexpected disconnection")
    d.edge._check_takeover(e, 3600.0)
    d.edge._check_takeover(e, 1.0)  # a broker restart, then a quick drop: not yet
    d.edge._check_takeover(e, 1.0)
    assert d.edge.session_problem() == ""
