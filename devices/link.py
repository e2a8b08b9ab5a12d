"""One bed's MQTT connection: its own client, a Last Will, QoS 1, in-order publishing.

Each bed connects as `crssim-{prefix}-{ward}-{bed}` with the Last Will `offline` (retained,
QoS 1) on `{p}/{ward}/{bed}/device`. `drop()` ends the connection abruptly (the socket is
shut, no DISCONNECT), so the broker publishes the will, as when a monitor loses power.
A connection lost by accident is re-established with backoff and the message retried
(QoS 1: the daemon recognises a message it already stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import aiomqtt

log = logging.getLogger("crswatch.simulate")


class BedLink:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        prefix: str,
        ward: str,
        bed: str,
        username: str | None = None,
        password: str | None = None,
        queue_size: int = 5000,
    ):
        self.host, self.port = host, port
        self.identifier = f"crssim-{prefix}-{ward}-{bed}"
        self.device_topic = f"{prefix}/{ward}/{bed}/device"
        self.username, self.password = username or None, password or None
        self.client: aiomqtt.Client | None = None
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.published = 0

    def _make_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.identifier,
            username=self.username,
            password=self.password,
            keepalive=30,
            timeout=10,
            will=aiomqtt.Will(self.device_topic, "offline", qos=1, retain=True),
        )

    async def connect(self) -> None:
        client = self._make_client()
        await client.__aenter__()
        self.client = client

    async def _ensure(self, stop: asyncio.Event) -> bool:
        """Connected (reconnecting with backoff, then announcing `online`); False if
        stopping first."""
        delay = 0.2
        while self.client is None:
            if stop.is_set():
                return False
            try:
                await self.connect()
                await self.client.publish(self.device_topic, b"online", qos=1, retain=True)
            except aiomqtt.MqttError as e:
                await self._abandon()
                log.warning(
                    "%s: broker connection: %s; retrying in %.1f s", self.identifier, e, delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)
        return True

    async def publish(self, topic: str, payload: bytes, retain: bool, stop: asyncio.Event) -> bool:
        while await self._ensure(stop):
            try:
                await self.client.publish(topic, payload, qos=1, retain=retain)
                self.published += 1
                return True
            except aiomqtt.MqttError as e:
                log.warning("%s: publish failed (%s); reconnecting", self.identifier, e)
                await self._abandon()
        return False

    async def drop(self) -> None:
        """Lose the connection abruptly: the broker publishes the Last Will."""
        client, self.client = self.client, None
        if client is None:
            return
        with contextlib.suppress(OSError, AttributeError):
            client._client.socket().shutdown(socket.SHUT_RDWR)
        await asyncio.sleep(0.01)  # let paho notice the closed socket
        await self._exit(client)

    async def _abandon(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await self._exit(client)

    async def _exit(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.__aexit__(None, None, None), 5)
        fut = getattr(client, "_disconnected", None)  # retrieve, so asyncio does not warn
        if fut is not None and fut.done() and not fut.cancelled():
            fut.exception()

    async def close(self) -> None:
        """A clean DISCONNECT: the broker discards the will (the retained `online` stays)."""
        await self._abandon()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish what the dispatcher queues, in order, until it queues None. Each
        message waits for its PUBACK (the simulator is CPU-bound long before the round
        trips matter: a window of messages in flight gained nothing at 3600x)."""
        while True:
            out = await self.queue.get()
            if out is None or stop.is_set():
                return
            if out.kind == "msg":
                await self.publish(out.topic, out.payload, out.retain, stop)
            elif out.kind == "will":
                await self.drop()
            elif self.client is not None:  # the first birth: connected already
                await self.publish(out.topic, out.payload, True, stop)
            else:
                await self._ensure(stop)  # reconnecting announces `online` itself
