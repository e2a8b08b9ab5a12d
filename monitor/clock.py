"""Timestamps: parsing what devices send, formatting what we publish, and the clock."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float: ...


def wall_clock() -> float:
    """The real clock; everything else takes a clock as an argument so tests can drive it."""
    return time.time()


@functools.lru_cache(maxsize=65_536)  # a state repeats the same reading times
def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds, e.g. 2026-11-25T10:00:00.000Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
