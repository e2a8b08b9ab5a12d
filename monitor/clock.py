"""Timestamps: parsing what devices send, formatting what we publish, and the clock."""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime
from typing import Protocol

from monitor.ingest.messages import Rejected


class Clock(Protocol):
    def __call__(self) -> float: ...


def wall_clock() -> float:
    """The real clock; everything else takes a clock as an argument so tests can drive it."""
    return time.time()


def parse_ts(value: object, field: str = "ts") -> float:
    """ISO 8601 with a zone, or epoch seconds -> epoch seconds. A naive time is rejected:
    a bedside clock without a zone cannot be placed on the ward's timeline."""
    if isinstance(value, bool):
        raise Rejected(f"{field}: expected ISO 8601 with a zone or epoch seconds, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Rejected(f"{field}: not a finite number")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Rejected(f"{field}: not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise Rejected(f"{field}: ISO 8601 time without a zone: {value[:40]!r}")
        return parsed.timestamp()
    if value is None:
        raise Rejected(f"{field}: missing")
    raise Rejected(f"{field}: expected ISO 8601 with a zone or epoch seconds")


@functools.lru_cache(maxsize=65_536)  # a state repeats the same reading times
def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds, e.g. 2026-11-25T10:00:00.000Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
