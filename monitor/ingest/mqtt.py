"""The MQTT edge: connect with a persistent session, subscribe, reconnect with backoff,
acknowledge each QoS 1 message only once what it carried is committed.

Why manual acknowledgement: aiomqtt 2.x (through paho) sends PUBACK as soon as a message
is received. If the daemon were killed between that PUBACK and the SQLite commit, the
broker would consider the message delivered and it would be lost. With paho's manual ack
switched on, the broker keeps every unacknowledged message in our persistent session and
sends it again after a restart; the store recognises redeliveries, so each is kept once.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

import aiomqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.config import Config, tls_context
from monitor.ingest import bulkread
from monitor.ingest.route import INBOUND

log = logging.getLogger("crswatch.mqtt")

# Session takeover: another client connecting with our client id makes the broker drop us
# and hand our persistent session (and the readings queued in it) to that client. MQTT 5
# brokers may say so (DISCONNECT reason 0x8E; Mosquitto 2.0.11 does not, it closes the
# connection); with 3.1.1, or without that reason, the connection just closes, so we take
# TAKEOVER_QUICK_N disconnections in a row, each within TAKEOVER_QUICK_S of connecting,
# for one. Either is a tier-3 alert and a 503 until TAKEOVER_HOLD_S without new evidence.
SESSION_TAKEN_OVER = 0x8E
TAKEOVER_QUICK_S = 5.0
CONNECT_ANSWER_S = 60.0  # the SUBACK and the online PUBACK after connecting (see run)
TAKEOVER_QUICK_N = 3
TAKEOVER_HOLD_S = 60.0


# The command paho files a packet under when it is only to be written: paho looks at the
# command of a written packet for PUBLISH (to report it) and DISCONNECT only.
RAW = 0x00


def _varint(n: int) -> bytes:
    """MQTT's variable byte integer (a packet's remaining length)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def status_topic(prefix: str) -> str:
    return f"{prefix}/_daemon/status"


def subscriptions(cfg: Config) -> list[tuple[str, int]]:
    p = cfg.prefix
    return [(f"{p}/{ward}/+/{kind}", 1) for ward in cfg["mqtt.wards"] for kind in INBOUND]


def make_client(cfg: Config) -> aiomqtt.Client:
    v5 = cfg["mqtt.protocol"] == "5"
    kwargs: dict = {}
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(cfg["mqtt.session_expiry_s"])
        props.ReceiveMaximum = int(cfg["mqtt.receive_maximum"])
        kwargs.update(protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props)
    else:
        kwargs.update(protocol=aiomqtt.ProtocolVersion.V311, clean_session=False)
    if cfg["mqtt.username"]:
        kwargs.update(username=cfg["mqtt.username"], password=cfg["mqtt.password"] or None)
    ctx = tls_context(cfg.values)  # config.load refused settings that cannot work
    if ctx is not None:
        kwargs["tls_context"] = ctx
    client = aiomqtt.Client(
        cfg["mqtt.host"],
        cfg["mqtt.port"],
        identifier=cfg["mqtt.client_id"],
        will=aiomqtt.Will(status_topic(cfg.prefix), "offline", qos=1, retain=True),
        timeout=10,
        max_inflight_messages=1000,
        **kwargs,
    )
    # Before connecting, so that messages redelivered from the session are not acked early.
    client._client.manual_ack_set(True)
    client.pending_calls_threshold = 10_000  # state and alert publications run concurrently
    return client


def _cause(client: aiomqtt.Client | None, e: aiomqtt.MqttError) -> aiomqtt.MqttError:
    """What ended the connection: aiomqtt's message iterator raises a plain "disconnected"
    error; the broker's reason code is on the client's disconnection future."""
    done = client is not None and client._disconnected.done()
    if done and not client._disconnected.cancelled():
        cause = client._disconnected.exception()
        if isinstance(cause, aiomqtt.MqttError):
            return cause
    return e


OnMessage = Callable[[str, bytes, int, int, object], None]


class MqttEdge:
    def __init__(
        self,
        cfg: Config,
        on_message: OnMessage,
        on_connect: Callable[[], None],
        set_connected: Callable[[bool], None],
    ):
        self.cfg = cfg
        self.on_message = on_message
        self.on_connect = on_connect
        self.set_connected = set_connected
        self.client: aiomqtt.Client | None = None
        # Subscribed (SUBACK) and `online` published on the present connection: alerts
        # go out from then on. Connected (set_connected) comes before, at the CONNACK.
        self.subscribed = asyncio.Event()
        self.takeover = ""  # why we believe another client took our session
        self.takeover_at: float | None = None  # monotonic time of the last evidence
        self._quick = 0  # disconnections in a row soon after connecting

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.cfg["mqtt.reconnect_min_s"]
        while not stop.is_set():
            up_at, client = None, None
            try:
                client = make_client(self.cfg)
                bulkread.install(client, self._receiver(client), asyncio.get_running_loop())
                self._report_connack(client)
                async with client:
                    up_at = time.monotonic()
                    # The present connection (self.client) since its CONNACK
                    # (_report_connack): a persistent session's queued messages arrive
                    # before the SUBACK, and those committed meanwhile must be acknowledged
                    # (ack_all skips other connections' messages); else the broker's
                    # in-flight window stays full and it sends nothing more.
                    # Connected since the CONNACK (_report_connack): the session's queued
                    # readings are flowing in and stored, however long the SUBACK takes
                    # behind them (tens of seconds behind a big backlog).
                    log.info(
                        "connected to %s:%s (%s, %s)",
                        self.cfg["mqtt.host"],
                        self.cfg["mqtt.port"],
                        "TLS" if self.cfg["mqtt.tls_ca"] else "plain MQTT",
                        f"user {self.cfg['mqtt.username']}"
                        if self.cfg["mqtt.username"]
                        else "anonymous",
                    )
                    # Their answers come behind a backlog's first in-flight window, read by
                    # a loop busy storing it: more time than the client's 10 s, or a big
                    # backlog turns into reconnections and redeliveries.
                    await client.subscribe(subscriptions(self.cfg), timeout=CONNECT_ANSWER_S)
                    await client.publish(
                        status_topic(self.cfg.prefix),
                        "online",
                        qos=1,
                        retain=True,
                        timeout=CONNECT_ANSWER_S,
                    )
                    self.subscribed.set()
                    delay = self.cfg["mqtt.reconnect_min_s"]
                    log.info("subscribed, status online")
                    self.on_connect()
                    reader = asyncio.create_task(self._read(client))
                    stopper = asyncio.create_task(stop.wait())
                    done, _ = await asyncio.wait(
                        {reader, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    stopper.cancel()
                    if reader in done:
                        reader.result()  # raises the MqttError that ended it
                    else:
                        reader.cancel()
                        await client.publish(
                            status_topic(self.cfg.prefix), "offline", qos=1, retain=True
                        )
            except aiomqtt.MqttError as e:
                log.warning("broker connection: %s; retrying in %.1f s", e, delay)
                self._check_takeover(
                    _cause(client, e), None if up_at is None else time.monotonic() - up_at
                )
            finally:
                self.client = None
                self.subscribed.clear()
                self.set_connected(False)
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, self.cfg["mqtt.reconnect_max_s"])

    def _check_takeover(self, e: aiomqtt.MqttError, lasted: float | None) -> None:
        """Was this disconnection another client taking our session? (see the top)"""
        rc = getattr(e, "rc", None)
        cid = self.cfg["mqtt.client_id"]
        if getattr(rc, "value", None) == SESSION_TAKEN_OVER:
            why = (
                f"the broker dropped the daemon because another client connected with its "
                f"client id {cid!r} (MQTT 5 reason 0x8E, session taken over)"
            )
        elif lasted is not None and lasted < TAKEOVER_QUICK_S:
            self._quick += 1
            if self._quick < TAKEOVER_QUICK_N:
                return
            why = (
                f"the broker dropped the daemon {self._quick} times in a row within "
                f"{TAKEOVER_QUICK_S:g} s of connecting: another client is probably using its "
                f"client id {cid!r} (session takeover)"
            )
        else:
            if lasted is not None:
                self._quick = 0
            return
        self.takeover = (
            f"{why}; readings queued for the daemon may have gone to that client and be lost; "
            "lock the broker (deploy/mosquitto/: use_username_as_clientid)"
        )
        self.takeover_at = time.monotonic()
        log.error("MQTT session: %s", self.takeover)

    def session_problem(self) -> str:
        """The takeover's cause while it is recent, else ""."""
        if self.takeover_at is None or time.monotonic() - self.takeover_at > TAKEOVER_HOLD_S:
            return ""
        return self.takeover

    def _receiver(self, client: aiomqtt.Client):
        on_message = self.on_message
        return lambda topic, payload, mid, qos: on_message(topic, payload, mid, qos, client)

    async def _read(self, client: aiomqtt.Client) -> None:
        """Messages arrive through bulkread; this only ends (raising) when the
        connection is lost."""
        async for _ in client.messages:
            pass

    def ack_all(self, acks: list[tuple[object, int, int]]) -> None:
        """PUBACK these messages now, in this order, in one write: only those that came in
        on the present connection (after a reconnect the broker sends the others again,
        and the store knows them already). What paho's `ack()` sends for each, joined."""
        client = self.client
        if client is None:
            return
        packet = b"".join(
            struct.pack("!BBH", PUBACK, 2, mid)
            for conn, mid, qos in acks
            if qos == 1 and conn is client
        )
        if packet:
            client._client._packet_queue(PUBACK, packet, 0, 1)

    def publish_states(self, states: list[tuple[str, bytes]]) -> bool:
        """Bed states: retained, QoS 0, handed to paho without waiting, as one write. Each
        state is superseded by the next one, the broker keeps the last (retained), and all
        of them are published again after a reconnect (Daemon._on_connect); QoS 1 would
        add a PUBACK and paho's bookkeeping per state for nothing.

        The PUBLISH packets are built here and queued as one packet that paho only
        writes (RAW): paho's own publish() makes a message info with its lock, a message
        id, a socket write and, once written, a publication report per state, which at
        thousands of states a second cost more than grading them. Nor do the states take
        paho's message ids, which the alerts' QoS 1 publications need: paho reports a
        written QoS 0 publication with its id, and aiomqtt took that for the PUBACK of an
        alert holding the same id (ids wrap at 65,535), counting it delivered too soon."""
        client = self.client
        if client is None or not states:
            return False
        v5 = self.cfg["mqtt.protocol"] == "5"
        blob = bytearray()
        for topic, payload in states:
            name = topic.encode()
            blob.append(0x31)  # PUBLISH, QoS 0, retain
            blob += _varint(2 + len(name) + v5 + len(payload))
            blob += len(name).to_bytes(2, "big")
            blob += name
            if v5:
                blob.append(0)  # no properties
            blob += payload
        rc = client._client._packet_queue(RAW, bytes(blob), 0, 0)
        return rc == 0

    def _report_connack(self, client: aiomqtt.Client) -> None:
        """Connected as soon as the broker accepts the connection (its CONNACK), in the
        callback that reads it: a persistent session's queued readings follow it at once,
        often in the same read, and are received and stored long before the SUBACK comes
        behind them. Reporting "connected" only after the SUBACK made /healthz, the
        metric and the broker alert say "not connected" through a whole backlog's drain."""
        paho_client = client._client
        aiomqtt_on_connect = paho_client.on_connect

        def on_connect(c, userdata, flags, reason_code, *rest):
            aiomqtt_on_connect(c, userdata, flags, reason_code, *rest)
            if reason_code == 0:  # CONNACK_ACCEPTED
                # the present connection from its CONNACK on: the queued messages behind it
                # in the same read are handed on before `async with client` resumes, and
                # an acknowledgement of one of them must not be dropped (ack_all)
                self.client = client
                self.set_connected(True)

        paho_client.on_connect = on_connect

    def backlog(self) -> int:
        """Bytes handed to paho and not yet written to the socket."""
        client = self.client
        if client is None:
            return 0
        return sum(p["to_process"] for p in list(client._client._out_packet))

    async def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> bool:
        client = self.client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=10)
            return True
        except aiomqtt.MqttError as e:
            log.warning("publish to %s failed: %s", topic, e)
            return False
