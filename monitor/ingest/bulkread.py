"""Read MQTT packets in bulk: the receive path of aiomqtt 2.5 / paho 2.2, made cheap.

Profiling the daemon showed most of the event loop went to receiving, not to our work:
  * paho reads each packet with three or more `recv` calls (the command byte, each byte
    of the remaining length, then the body), one system call each;
  * aiomqtt's reader calls `loop_read()`, which handles one packet per wake-up of the
    event loop;
  * aiomqtt then wraps each message in its own `Message` and `Topic` objects and hands
    it over through an asyncio queue, with a new task and an `asyncio.wait` per message.

`install` changes three things on one client, before it connects:
  * paho's `_sock_recv` is served from a 256 KB buffer filled by one `recv`;
  * the socket's reader drains every packet that is available (up to `max_per_wakeup`,
    then it yields to the loop and carries on in the next iteration);
  * paho's `on_message` calls our callback with the topic, payload, mid and QoS directly.
Everything else (connect, subscribe, publish, PUBACK, keep-alive, disconnection) stays
with aiomqtt and paho. The receive throughput of a loop that only counts goes from about
21,000 to about 65,000 messages a second here (benchmarks/e2e.py measures both).

These are private attributes of pinned versions; tests/test_bulkread.py checks the
assumptions, so that an upgrade that breaks them fails loudly rather than silently.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import aiomqtt
from paho.mqtt.client import MQTT_ERR_AGAIN, MQTT_ERR_SUCCESS

BUFFER = 256 * 1024

OnPacket = Callable[[str, bytes, int, int], None]  # topic, payload, mid, qos


class BulkReader:
    def __init__(self, client: aiomqtt.Client, on_message: OnPacket, max_per_wakeup: int = 500):
        self.client = client
        self.paho = client._client
        self.on_message = on_message
        self.max_per_wakeup = max_per_wakeup
        self.sock = None
        self.buf = b""
        self.pos = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.scheduled = False

    def recv(self, n: int) -> bytes:
        sock = self.paho._sock
        if sock is not self.sock:  # a new connection: nothing buffered belongs to it
            self.sock, self.buf, self.pos = sock, b"", 0
        if self.pos >= len(self.buf):
            if sock is None:
                raise ConnectionError("socket closed")
            try:
                self.buf = sock.recv(BUFFER)  # BlockingIOError when nothing is there
            except ssl.SSLWantReadError as e:
                raise BlockingIOError from e
            except ssl.SSLWantWriteError as e:
                self.paho._call_socket_register_write()
                raise BlockingIOError from e
            self.pos = 0
            if not self.buf:
                return b""  # the broker closed the connection
        out = self.buf[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def drain(self) -> None:
        """Handle every packet received, up to max_per_wakeup, then let the loop run."""
        self.scheduled = False
        paho = self.paho
        try:
            for _ in range(self.max_per_wakeup):
                if paho._sock is None:
                    return
                rc = paho._packet_read()
                if rc == MQTT_ERR_AGAIN:
                    return
                if rc != MQTT_ERR_SUCCESS:
                    paho._loop_rc_handle(rc)
                    return
            self.scheduled = True
            self.loop.call_soon(self.drain)
        except Exception as exc:  # as aiomqtt's own reader: the connection is broken
            if not self.client._disconnected.done():
                self.client._disconnected.set_exception(exc)

    def _on_socket_open(self, aiomqtt_open, client, userdata, sock) -> None:
        aiomqtt_open(client, userdata, sock)  # schedules aiomqtt's reader ...

        def replace():  # ... which we then replace, in the same order, on the loop
            self.loop.remove_reader(sock.fileno())
            self.loop.add_reader(sock.fileno(), self._readable)

        self.loop.call_soon_threadsafe(replace)

    def _readable(self) -> None:
        if not self.scheduled:
            self.drain()

    def _on_paho_message(self, client, userdata, message) -> None:
        # A topic that is not UTF-8 must reach the router (which rejects it with its
        # reason), not raise here and drop the connection.
        topic = message._topic.decode("utf-8", "replace")
        self.on_message(topic, message.payload, message.mid, message.qos)


def install(
    client: aiomqtt.Client,
    on_message: OnPacket,
    loop: asyncio.AbstractEventLoop,
    max_per_wakeup: int = 500,
) -> BulkReader:
    """Switch `client` (not yet connected) to bulk reading. aiomqtt's `messages` then
    receives nothing; it still raises when the connection is lost."""
    reader = BulkReader(client, on_message, max_per_wakeup)
    reader.loop = loop
    paho = client._client
    paho._sock_recv = reader.recv
    aiomqtt_open = paho.on_socket_open
    paho.on_socket_open = lambda c, u, s: reader._on_socket_open(aiomqtt_open, c, u, s)
    paho.on_message = reader._on_paho_message
    return reader
