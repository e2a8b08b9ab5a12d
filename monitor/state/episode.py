"""A CRS episode, for the masked-fever exception (CLINICAL.md, revised).

Fever is not required for the CRS grade after an antipyretic or anti-cytokine drug given
during a CRS episode, for that episode only. The episode has resolved once there has been
no fever, no sustained hypotension or hypoxaemia and no CRS support (oxygen other than room
air, a vasopressor running) for EPISODE_QUIET_S; a later grade needs fever again.

`Evidence` keeps the times of that evidence, thinned to one per THIN_S as they arrive (a
gap is measured to THIN_S), so a ten-day admission costs a few thousand floats at most.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from typing import Any

EPISODE_QUIET_S = 24 * 3600.0
THIN_S = 600.0

Interval = tuple[float, float]


class Evidence:
    __slots__ = ("times",)

    def __init__(self) -> None:
        self.times: list[float] = []

    def add(self, ts: float) -> None:
        times = self.times
        i = bisect_right(times, ts)
        if i and ts - times[i - 1] < THIN_S:
            return  # one point per THIN_S is enough to measure a 24-hour gap
        insort(times, ts)

    def last_before(self, t: float) -> float | None:
        i = bisect_right(self.times, t)
        return self.times[i - 1] if i else None

    def masked_until(self, doses: list[float], t: float, support: list[Interval]) -> float | None:
        """Whether a masking drug given at one of `doses` (all after the first fever, at or
        before t) still masks fever at t: the newest dose given during an episode (CRS
        evidence in the EPISODE_QUIET_S before it, or support running), and that episode
        not resolved since. None: it does not. While it does: a time after t before which
        it still does with no new evidence, dose or support. The episode resolves no sooner
        than EPISODE_QUIET_S after its newest evidence or support up to t (support running
        at t ends at t in `support`: the answer is then early, never late), nor after
        evidence timed past t (a reading ahead of the clock) joins it."""
        for dose in sorted(doses, reverse=True):
            last = self.last_before(dose)
            running = any(a <= dose <= b for a, b in support)
            if running or (last is not None and dose - last < EPISODE_QUIET_S):
                if self.quiet_within(dose, t, support):
                    return None
                ahead = bisect_right(self.times, t)
                newest = max([dose, *self.times[ahead - 1 : ahead], *(b for _, b in support)])
                after = self.times[ahead] if ahead < len(self.times) else math.inf
                return min(newest + EPISODE_QUIET_S, after)
        return None

    def quiet_within(self, start: float, end: float, support: list[Interval]) -> bool:
        """Whether [start, end] holds a stretch of EPISODE_QUIET_S with no evidence and no
        support running (`support`: intervals during which oxygen or a pressor ran)."""
        lo = bisect_right(self.times, start)
        hi = bisect_right(self.times, end)
        spans = sorted([(x, x) for x in self.times[lo:hi]] + support)
        cur = start
        for a, b in spans:
            if b < cur:
                continue
            if min(a, end) - cur >= EPISODE_QUIET_S:
                return True
            cur = max(cur, b)
            if cur >= end:
                return False
        return end - cur >= EPISODE_QUIET_S


def support_intervals(
    oxygen: Sequence[tuple[float, Any]], pressors: Iterable[Sequence[tuple[float, Any]]], t: float
) -> list[Interval]:
    """When oxygen other than room air (`oxygen`: (ts, (device, flow, fio2))) or a
    vasopressor (each of `pressors`: (ts, "start" | "stop")) ran, up to t."""
    out: list[Interval] = []
    for i, (ts, entry) in enumerate(oxygen):
        if ts <= t and entry[0] not in (None, "room_air"):
            end = oxygen[i + 1][0] if i + 1 < len(oxygen) else t
            out.append((ts, min(end, t)))
    for series in pressors:
        start = None
        for ts, action in series:
            if ts > t:
                break
            if action == "start" and start is None:
                start = ts
            elif action == "stop" and start is not None:
                out.append((start, ts))
                start = None
        if start is not None:
            out.append((start, t))
    return out
