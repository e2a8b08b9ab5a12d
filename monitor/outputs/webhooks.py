"""Webhook delivery for pagers and SMS gateways.

Each delivery is a JSON body signed with HMAC-SHA256 (header `X-CRSWatch-Signature:
sha256=<hex>` over the exact body bytes, plus `X-CRSWatch-Timestamp`), retried with
exponential backoff, and recorded as a dead letter when the receiver stays down. Each
delivery runs in its own task: a receiver that hangs never delays another receiver, nor
the dashboard or MQTT channels.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson

log = logging.getLogger("crswatch.webhooks")


def sign(secret: str, body: bytes, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """What a receiver does (and what the tests do)."""
    return hmac.compare_digest(sign(secret, body, timestamp), signature)


@dataclass(frozen=True)
class Target:
    receiver: str
    url: str
    secret: str


class Webhooks:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        dead_letter: Callable[[dict], None],
        attempts: int = 5,
        first_delay_s: float = 1.0,
        timeout_s: float = 5.0,
        max_in_flight: int = 100,
    ):
        self.clock = clock
        self.dead_letter = dead_letter
        self.attempts = attempts
        self.first_delay_s = first_delay_s
        self.timeout_s = timeout_s
        self.slots = asyncio.Semaphore(max_in_flight)
        self.tasks: set[asyncio.Task] = set()
        self.session: aiohttp.ClientSession | None = None
        self.delivered = 0

    def send(self, target: Target, payload: dict) -> None:
        """Start delivering `payload` to `target`; returns at once."""
        task = asyncio.create_task(self._deliver(target, payload))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, target: Target, payload: dict) -> None:
        body = orjson.dumps(payload)
        delay, error = self.first_delay_s, ""
        async with self.slots:
            if self.session is None:
                self.session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s)
                )
            for attempt in range(1, self.attempts + 1):
                stamp = f"{self.clock():.3f}"
                headers = {
                    "Content-Type": "application/json",
                    "X-CRSWatch-Timestamp": stamp,
                    "X-CRSWatch-Signature": sign(target.secret, body, stamp),
                    "X-CRSWatch-Attempt": str(attempt),
                }
                try:
                    async with self.session.post(target.url, data=body, headers=headers) as r:
                        if 200 <= r.status < 300:
                            self.delivered += 1
                            return
                        error = f"HTTP {r.status}"
                except (aiohttp.ClientError, TimeoutError) as e:
                    error = f"{type(e).__name__}: {e}"
                if attempt < self.attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
        log.warning(
            "webhook to %s failed %d times (%s): dead letter", target.receiver, self.attempts, error
        )
        self.dead_letter(
            {
                "ts": self.clock(),
                "receiver": target.receiver,
                "channel": "webhook",
                "alert_id": payload.get("id"),
                "event": payload.get("event"),
                "error": error,
                "body": body.decode(),
            }
        )

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
