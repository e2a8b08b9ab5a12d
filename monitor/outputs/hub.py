"""Live changes, fanned out to every listener (the dashboard's WebSockets).

Each listener has its own bounded queue: a slow client never delays the others. When a
client's queue is full it is marked `overflowed` and its queue emptied; the client must
then resynchronise (the WebSocket handler sends it a fresh snapshot).
"""

from __future__ import annotations

import asyncio
from typing import Any


class Listener:
    def __init__(self, maxsize: int):
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.overflowed = False


class Hub:
    def __init__(self, maxsize: int = 10_000):
        self.maxsize = maxsize
        self.listeners: set[Listener] = set()

    def subscribe(self) -> Listener:
        listener = Listener(self.maxsize)
        self.listeners.add(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def publish(self, event: dict[str, Any]) -> None:
        """Never blocks: `event` is {"type": "state"|"alert"|..., ...}."""
        for listener in self.listeners:
            try:
                listener.queue.put_nowait(event)
            except asyncio.QueueFull:
                listener.overflowed = True
                while not listener.queue.empty():
                    listener.queue.get_nowait()
