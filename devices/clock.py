"""The simulated clock: sim time = start + (wall - wall_start) * speed.

Its pace may change while it runs (`set_speed`: the demo slows down rather than let the
daemon fall behind): the simulated time then goes on from where it is, at the new pace,
never jumping or going back.

One SimClock is shared by the simulator (it publishes each reading when the clock reaches
the reading's ts) and, in `./run demo`, by the daemon (`Daemon(cfg, clock=clock)`): both
then agree on "now", so nothing the simulator sends is ever in the daemon's future.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import datetime

MIN_SPEED, MAX_SPEED = 1.0, 3600.0
_OFFSET = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class SimClock:
    """Callable like `monitor.clock.Clock`: `clock()` is the simulated now (epoch s)."""

    def __init__(
        self,
        start_sim_ts: float,
        speed: float = 1.0,
        wall_start: float | None = None,
        wall: Callable[[], float] = time.time,
    ):
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        self.start_sim_ts = float(start_sim_ts)
        self.speed = float(speed)
        self.wall = wall
        self.wall_start = wall() if wall_start is None else float(wall_start)
        # where the current pace started (start_sim_ts stays the simulation's start)
        self._base_sim, self._base_wall = self.start_sim_ts, self.wall_start

    def __call__(self) -> float:
        return self._base_sim + (self.wall() - self._base_wall) * self.speed

    def wall_at(self, sim_ts: float) -> float:
        """The wall time at which the simulated clock reads `sim_ts` (at the current pace)."""
        return self._base_wall + (sim_ts - self._base_sim) / self.speed

    def set_speed(self, speed: float) -> None:
        """From now on, `speed` simulated seconds per wall second; now stays now."""
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        wall = self.wall()
        self._base_sim = self._base_sim + (wall - self._base_wall) * self.speed
        self._base_wall = wall
        self.speed = float(speed)

    def __repr__(self) -> str:
        return f"SimClock(start_sim_ts={self.start_sim_ts!r}, speed={self.speed!r})"


def parse_start(text: str | None, now: float) -> float:
    """`None`/"now", an ISO 8601 time with a zone, or an offset from now ("-2d", "-36h",
    "-90m", "+30s", also written "now-2d") -> epoch seconds, whole seconds. ValueError with
    a short reason. On a command line write `--start=-2d` or `--start now-2d` (argparse
    takes a bare "-2d" for an option)."""
    if text is None or text.strip().lower() in ("", "now"):
        return float(math.floor(now))
    text = text.strip()
    m = _OFFSET.match(text[3:] if text.lower().startswith("now") else text)
    if m:
        sign = -1.0 if m.group(1) == "-" else 1.0
        return float(math.floor(now + sign * float(m.group(2)) * _UNIT_S[m.group(3)]))
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time or an offset like -2d: {text!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"ISO 8601 time without a zone (add Z or +01:00): {text!r}")
    return float(math.floor(parsed.timestamp()))
