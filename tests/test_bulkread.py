"""monitor/ingest/bulkread.py: the daemon's receive path, against the real broker.

It relies on private parts of the pinned aiomqtt and paho; the first test names them, so
that an upgrade that moves them fails here, by name, rather than somewhere downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal

import aiomqtt
import paho.mqtt.client as paho
import pytest

from monitor.ingest import bulkread
from tests.conftest import wait_for

_ids = itertools.count()


@contextlib.asynccontextmanager
async def _edge_on_its_own_broker(broker, tmp_path):
    """(broker, edge): the daemon's MQTT edge connected and subscribed to a broker of its
    own, which the test may freeze (SIGSTOP); thawed and stopped afterwards."""
    from monitor.ingest.mqtt import MqttEdge
    from tests.conftest import daemon_config
    from tests.support.brokers import TestBroker

    own = TestBroker(tmp_path / "own", kind=broker.kind).start()
    edge = MqttEdge(daemon_config(own, tmp_path), lambda *a: None, lambda: None, lambda up: None)
    stop = asyncio.Event()
    task = asyncio.create_task(edge.run(stop))
    try:
        await wait_for(edge.subscribed.is_set, what="edge connected and subscribed")
        yield own, edge
    finally:
        os.kill(own.proc.pid, signal.SIGCONT)
        stop.set()
        await asyncio.wait_for(task, 15)
        own.stop()


async def test_the_private_parts_it_relies_on_exist():
    client = aiomqtt.Client("127.0.0.1", 1, identifier="probe")
    p = client._client
    for name in (
        "_sock_recv",
        "_packet_read",
        "_loop_rc_handle",
        "_sock",
        "_out_packet",
        "_call_socket_register_write",
        "on_socket_open",
        "on_message",
        "_in_packet",
        "_protocol",
        "_last_bytes_received",
        "_manual_ack",
        "_send_puback",
    ):
        assert hasattr(p, name), name
    assert p._in_packet["command"] == 0  # paho's mark of "no packet begun"
    assert hasattr(client, "_disconnected")
    assert paho.MQTT_ERR_AGAIN != paho.MQTT_ERR_SUCCESS


async def _receive(broker, publish: list[tuple[str, bytes]], *, max_per_wakeup=500):
    """Subscribe a bulk-reading client, publish `publish` at QoS 1 from another client,
    and return what the bulk reader handed over (topic, payload, qos)."""
    got: list[tuple[str, bytes, int]] = []
    n = next(_ids)
    client = aiomqtt.Client(broker.host, broker.port, identifier=f"bulk-{n}")
    bulkread.install(
        client,
        lambda t, p, mid, qos: got.append((t, p, qos)),
        asyncio.get_running_loop(),
        max_per_wakeup=max_per_wakeup,
    )
    async with client:
        await client.subscribe(f"bulk{n}/#", qos=1)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"bulk-pub-{n}") as pub:
            for topic, payload in publish:
                await pub.publish(f"bulk{n}/{topic}", payload, qos=1)
        await wait_for(lambda: len(got) >= len(publish), what="all messages received")
        await asyncio.sleep(0.1)  # nothing more arrives than was sent
    return [(t.split("/", 1)[1], p, q) for t, p, q in got]


async def test_every_message_of_a_burst_arrives_once_in_order(broker):
    sent = [(f"b{i % 7}/vitals", b'{"ts":%d,"hr":%d}' % (i, 60 + i % 50)) for i in range(3000)]
    # a small max_per_wakeup makes the reader yield and resume many times mid-buffer
    got = await _receive(broker, sent, max_per_wakeup=7)
    assert [(t, p) for t, p, _ in got] == sent
    assert {q for _, _, q in got} == {1}


async def test_a_message_larger_than_the_read_buffer_arrives_whole(broker):
    big = bytes(range(256)) * (bulkread.BUFFER // 256 * 3 + 5)  # three buffers and more
    got = await _receive(
        broker, [("a/vitals", b"small"), ("a/vitals", big), ("a/vitals", b"after")]
    )
    assert [p for _, p, _ in got] == [b"small", big, b"after"]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_publishes_read_without_paho_are_what_paho_reads(broker, protocol):
    """The reader parses whole QoS 0 and 1 PUBLISH packets itself and leaves the rest to
    paho. Both readers get the same traffic from the broker (QoS 0 and 1, retained and
    not, MQTT 5 properties, sizes that cut packets at the buffer's end, a packet over a
    buffer): the topic, payload, message id and QoS handed on must be the same, and
    nearly all of the messages must have come the fast way."""
    if protocol == "5" and broker.kind != "mosquitto":
        pytest.skip("the embedded broker speaks MQTT 3.1.1 only")
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    n = next(_ids)
    sizes = [0, 1, 100, 126, 127, 128, 16_383, 16_384, 70_000, bulkread.BUFFER + 10]
    sent = [
        (f"fast{n}/w/b{i % 5}/é", bytes([i % 256]) * sizes[i % len(sizes)], i % 2, i % 3 == 0)
        for i in range(300)
    ]
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("device", "monitor-7")
    props.ContentType = "application/json"
    got: dict[str, list] = {"bulk": [], "paho": []}
    slow = {"n": 0}

    bulk = aiomqtt.Client(broker.host, broker.port, identifier=f"fast-{n}", protocol=version)
    reader = bulkread.install(
        bulk,
        lambda t, p, mid, qos: got["bulk"].append((t, p, mid, qos)),
        asyncio.get_running_loop(),
        max_per_wakeup=11,
    )
    paho_read = reader.paho._packet_read

    def counted():
        slow["n"] += 1
        return paho_read()

    reader.paho._packet_read = counted
    plain = aiomqtt.Client(broker.host, broker.port, identifier=f"plain-{n}", protocol=version)
    async with bulk, plain:
        await bulk.subscribe(f"fast{n}/#", qos=1)
        await plain.subscribe(f"fast{n}/#", qos=1)
        async with aiomqtt.Client(
            broker.host, broker.port, identifier=f"fast-pub-{n}", protocol=version
        ) as pub:
            for topic, payload, qos, retain in sent:
                extra = {"properties": props} if protocol == "5" else {}
                await pub.publish(topic, payload, qos=qos, retain=retain, **extra)
        async for m in plain.messages:
            got["paho"].append((m.topic.value, m.payload, m.mid, m.qos))
            if len(got["paho"]) == len(sent):
                break
        await wait_for(lambda: len(got["bulk"]) >= len(sent), what="all messages received")
        await asyncio.sleep(0.1)  # nothing more arrives than was sent
        bulk_got = list(got["bulk"])
        for topic, *_ in sent[:5]:  # the retained ones stay with the test's broker otherwise
            await plain.publish(topic, b"", qos=1, retain=True)
    assert [(t, p, q) for t, p, _, q in bulk_got] == [(t, p, q) for t, p, q, _ in sent]
    assert [g[2] for g in bulk_got if g[3]] == [g[2] for g in got["paho"] if g[3]]
    assert slow["n"] < len(sent) // 2, "most publishes should not go through paho"


async def test_what_the_fast_path_leaves_to_paho():
    """Anything but a whole, well-formed QoS 0 or 1 PUBLISH stays in the buffer for paho:
    a cut packet, QoS 2, a PUBREL, an empty topic, a properties length past the end."""
    client = aiomqtt.Client("127.0.0.1", 1, identifier="probe-fast")
    client._client.manual_ack_set(True)  # as the daemon's (unconnected: nothing to ack on)
    got: list = []
    reader = bulkread.BulkReader(client, lambda *a: got.append(a))

    def publish(header: int, topic: bytes, body: bytes, mid: bytes = b"") -> bytes:
        rest = len(topic).to_bytes(2, "big") + topic + mid + body
        return bytes([header, len(rest)]) + rest

    whole = publish(0x32, b"a/b", b"{}", mid=b"\x00\x07")
    for tail, why in [
        (whole[:-1], "cut by the buffer's end"),
        (publish(0x34, b"a/b", b"{}", mid=b"\x00\x08"), "QoS 2"),
        (b"\x62\x02\x00\x07", "PUBREL"),
        (publish(0x30, b"", b"{}"), "empty topic"),
    ]:
        got.clear()
        reader.buf, reader.pos = whole + tail, 0
        assert reader._publishes(100) == 1, why
        assert got == [("a/b", b"{}", 7, 1)], why
        assert reader.pos == len(whole), why  # paho starts at the packet it must read

    client._client._protocol = paho.MQTTv5
    bad_props = publish(0x30, b"a/b", b"\x05{}")  # 5 bytes of properties, 2 there
    reader.buf, reader.pos = bad_props, 0
    assert reader._publishes(100) == 0
    good = publish(0x31, b"a/b", b"\x03\x01\x00\x01{}")  # retained, 3 bytes of properties
    reader.buf, reader.pos = good, 0
    got.clear()
    assert reader._publishes(100) == 1 and got == [("a/b", b"{}", 0, 0)]


async def test_a_lost_connection_ends_the_messages_iterator(broker, tmp_path):
    """The daemon learns of a lost connection through aiomqtt's iterator, which the bulk
    reader leaves in place: a broker that goes away must end it with MqttError."""
    from tests.support.brokers import TestBroker

    own = TestBroker(tmp_path / "own", kind=broker.kind).start()
    client = aiomqtt.Client(own.host, own.port, identifier="bulk-lost")
    bulkread.install(client, lambda *a: None, asyncio.get_running_loop())
    try:
        async with client:
            own.stop()
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(30):
                    async for _ in client.messages:
                        pass
    except aiomqtt.MqttError:
        pass  # leaving the context of a lost connection may raise too
    finally:
        own.stop()


async def test_a_qos0_state_never_counts_as_the_puback_of_an_alert(broker, tmp_path):
    """paho gives QoS 0 and QoS 1 publications their message ids from one counter and
    reports a written QoS 0 one with its id, which aiomqtt took for the PUBACK of an
    alert holding that id. Here the alert is given the id a state would have taken (the
    counter set back after the state), the broker frozen: the alert must not count as
    delivered when the state is written, only when the broker acknowledges it. (States
    are written as packets of their own, without an id: publish_states.)"""
    async with _edge_on_its_own_broker(broker, tmp_path) as (own, edge):
        os.kill(own.proc.pid, signal.SIGSTOP)  # nothing is acknowledged from now on
        paho_client = edge.client._client
        before = paho_client._last_mid
        edge.publish_states([("x/w/b/state", b"{}")])
        paho_client._last_mid = before  # the alert gets the state's id
        alert = asyncio.create_task(edge.publish("x/w/alerts", b"{}", qos=1))
        done, _ = await asyncio.wait({alert}, timeout=1.5)
        assert not done, "the alert counted as delivered without the broker's PUBACK"
        os.kill(own.proc.pid, signal.SIGCONT)
        assert await alert is True  # and is, once the broker acknowledges it


async def test_queued_messages_that_arrive_before_the_suback_are_acknowledged(broker, tmp_path):
    """A persistent session with more queued than the broker sends before a PUBACK
    (max_inflight_messages 1000): at connect the broker sends them before it answers the
    SUBSCRIBE. Acknowledged as soon as they are received (as if committed at once), every
    one must be: an acknowledgement dropped because the connection did not count as
    present yet leaves the broker's window full, and it sends nothing more, ever (the
    1,000-bed drain benchmark stopped at exactly 1,000 stored)."""
    from monitor.ingest.mqtt import MqttEdge
    from tests.conftest import daemon_config
    from tests.support.brokers import TestBroker

    if broker.kind != "mosquitto":
        pytest.skip("needs a broker that queues for an offline session (Mosquitto)")
    own = TestBroker(tmp_path / "own", kind=broker.kind).start()
    cfg = daemon_config(own, tmp_path)
    prefix = cfg["mqtt.topic_prefix"]
    got: list[int] = []

    def on_message(topic, payload, mid, qos, conn):
        got.append(mid)
        edge.ack_all([(conn, mid, qos)])

    edge = MqttEdge(cfg, on_message, lambda: None, lambda up: None)
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(edge.run(stop))
        await wait_for(edge.subscribed.is_set, what="the session subscribed")
        stop.set()
        await asyncio.wait_for(task, 15)
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="queue-filler")
        pub.max_inflight_messages_set(1000)
        pub.connect(own.host, own.port)
        pub.loop_start()
        infos = [
            pub.publish(f"{prefix}/w1/b1/vitals", b'{"ts":%d,"hr":70}' % i, qos=1)
            for i in range(2500)
        ]
        for info in infos:
            await asyncio.to_thread(info.wait_for_publish, 30)
        pub.loop_stop()
        pub.disconnect()
        stop = asyncio.Event()
        task = asyncio.create_task(edge.run(stop))
        await wait_for(lambda: len(got) >= 2500, timeout=30, what="every queued message")
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        own.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_bed_states_go_out_retained_in_one_write_on_either_protocol(
    broker, tmp_path, protocol
):
    """publish_states builds the PUBLISH packets itself (paho only writes them): each
    state must reach a subscriber whole, retained, in order, whatever its size (a
    remaining length of one, two and three bytes) and on MQTT 3.1.1 and 5 alike (5 adds
    a properties length to every packet: one byte off and every state after it is
    garbage or the broker drops the connection)."""
    if protocol == "5" and broker.kind != "mosquitto":
        pytest.skip("the embedded broker speaks MQTT 3.1.1 only")
    from monitor.ingest.mqtt import MqttEdge
    from tests.conftest import daemon_config

    cfg = daemon_config(broker, tmp_path, mqtt={"protocol": protocol})
    p = cfg.prefix
    states = [
        (f"{p}/w1/b1/state", b'{"crs_grade":1}'),
        (f"{p}/w1/b2/state", b"x" * 300),  # a two-byte remaining length
        (f"{p}/w2/long-bed-name/state", bytes(range(256)) * 80),  # three bytes
    ]
    edge = MqttEdge(cfg, lambda *a: None, lambda: None, lambda up: None)
    stop = asyncio.Event()
    task = asyncio.create_task(edge.run(stop))
    try:
        await wait_for(edge.subscribed.is_set, what="edge connected and subscribed")
        assert edge.publish_states(states) is True
        # queued, not yet read by the broker: a QoS 1 message behind them on the same
        # connection is acknowledged only once the broker has taken what came before it
        assert await edge.publish(f"{p}/_test/behind-the-states", b"", qos=1) is True
        # a subscriber that comes afterwards gets them as the broker kept them: retained
        heard: dict[str, tuple[bytes, bool]] = {}
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"s-{next(_ids)}") as c:
            await c.subscribe(f"{p}/+/+/state")
            async with asyncio.timeout(10):
                async for m in c.messages:
                    heard[str(m.topic)] = (bytes(m.payload), m.retain)
                    if len(heard) == len(states):
                        break
        assert heard == {topic: (payload, True) for topic, payload in states}
        assert edge.client is not None, "the broker dropped the edge"
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_the_backlog_is_the_bytes_paho_holds_for_a_broker_that_stopped_reading(
    broker, tmp_path
):
    """The state loop holds each bed's latest state while paho holds more than
    STATE_BACKLOG_MAX bytes for the socket: a pass's states are one packet, so the
    backlog must count bytes, not packets (one packet of 20 MB of states counted as 1)."""
    async with _edge_on_its_own_broker(broker, tmp_path) as (own, edge):
        assert edge.backlog() == 0
        os.kill(own.proc.pid, signal.SIGSTOP)  # it reads nothing more
        states = [(f"x/w/b{i}/state", b"s" * 100_000) for i in range(200)]  # 20 MB
        edge.publish_states(states)
        await asyncio.sleep(0.5)  # the socket's buffers take what they can
        # what the kernel took is gone from paho; the rest (most of 20 MB) waits
        assert 10_000_000 < edge.backlog() <= 20_100_000
