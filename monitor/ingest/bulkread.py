"""Read MQTT packets in bulk: the receive path of aiomqtt 2.5 / paho 2.2, made cheap.

Profiling the daemon showed most of the event loop went to receiving, not to our work:
  * paho reads each packet with three or more `recv` calls (the command byte, each byte
    of the remaining length, then the body), one system call each;
  * aiomqtt's reader calls `loop_read()`, which handles one packet per wake-up of the
    event loop;
  * aiomqtt then wraps each message in its own `Message` and `Topic` objects and hands
    it over through an asyncio queue, with a new task and an `asyncio.wait` per message.

`install` changes four things on one client, before it connects:
  * paho's `_sock_recv` is served from a 256 KB buffer filled by one `recv`;
  * the socket's reader drains every packet that is available (up to `max_per_wakeup`,
    then it yields to the loop and carries on in the next iteration);
  * paho's `on_message` calls our callback with the topic, payload, mid and QoS directly;
  * the whole QoS 0 and 1 PUBLISH packets in the buffer are parsed here and handed on
    without paho (`_publishes`): paho's `decode_publish`, its `MQTTMessage`, its debug
    log line and its callback matching were a third of the loop's time while draining.
    Anything else (another packet, QoS 2, a packet cut by the buffer's end, anything
    malformed) is left to paho, which reads it from the same buffer.
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
from paho.mqtt.client import MQTT_ERR_AGAIN, MQTT_ERR_SUCCESS, MQTTv5, time_func

BUFFER = 256 * 1024
PUBLISH_QOS0, PUBLISH_QOS1 = 0x30, 0x32  # the fixed header without its DUP and RETAIN bits

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

    def _publishes(self, budget: int) -> int:
        """Hand on the whole QoS 0 and 1 PUBLISH packets at the head of the buffer (at most
        `budget`), read as paho's `decode_publish` reads them (MQTT 5 properties skipped:
        the callback never had them). Stops at anything else, which paho then reads.
        Returns how many were handed on."""
        buf, pos, end = self.buf, self.pos, len(self.buf)
        paho = self.paho
        v5 = paho._protocol == MQTTv5
        on_message = self.on_message
        n = 0
        while n < budget and pos < end:
            header = buf[pos]
            if header & 0xF6 not in (PUBLISH_QOS0, PUBLISH_QOS1):
                break
            length, i = _read_varint(buf, pos + 1, end)
            if length < 2 or i + length > end:  # incomplete (or malformed): paho's turn
                break
            stop = i + length
            t0 = i + 2
            t1 = t0 + (buf[i] << 8 | buf[i + 1])
            if t1 == t0:  # an empty topic: malformed (3.1.1) or a topic alias (5)
                break
            mid, p = 0, t1
            if header & 0x06:
                mid, p = int.from_bytes(buf[t1 : t1 + 2]), t1 + 2
            if v5:
                props, p = _read_varint(buf, p, stop)
                p = stop + 1 if props < 0 else p + props
            if p > stop:
                break
            pos = self.pos = stop
            qos = header >> 1 & 3
            on_message(buf[t0:t1].decode("utf-8", "replace"), buf[p:stop], mid, qos)
            if qos and not paho._manual_ack:  # as paho does, after the callback
                paho._send_puback(mid)
            n += 1
        return n

    def drain(self) -> None:
        """Handle every packet received, up to max_per_wakeup, then let the loop run."""
        self.scheduled = False
        paho = self.paho
        try:
            budget = self.max_per_wakeup
            while budget > 0:
                if paho._sock is None:
                    return
                if paho._in_packet["command"] == 0:  # between packets: ours to read
                    if self.pos >= len(self.buf) or self.sock is not paho._sock:
                        try:
                            self.recv(0)  # fill the buffer (anew, on a new connection)
                        except BlockingIOError:
                            return  # nothing more has come
                        except OSError:
                            pass  # paho's read below meets it too, and reports it
                    done = self._publishes(budget)
                    if done:  # as paho notes bytes read, for its keep-alive
                        paho._last_bytes_received = time_func()
                        budget -= done
                        continue
                budget -= 1
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


def _read_varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    """An MQTT variable byte integer at buf[i:end] -> (value, index after it); (-1, end)
    when it runs past `end` or past four bytes. (Its writer: mqtt.py's `_varint`.)"""
    value = shift = 0
    while i < end and shift < 28:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
    return -1, end


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
