"""The demo's honesty under load: how far the daemon is behind its simulated ward, a pace
that slows down rather than fall behind, and the one-line terminal status.

"Behind" is how old, on the ward's (simulated) clock, the newest reading the daemon holds
is, beyond the simulator's fastest cadence (a reading every 5 simulated seconds): on a
machine that keeps up it is 0; when the simulator, the broker or the daemon cannot keep
up, it grows. The pacer then lowers the simulated speed (never below 1x) until the daemon
keeps up, and raises it again, step by step, up to the speed asked for; each slowdown is
given SETTLE_S to show before the next (a backlog takes a while to drain), and the pace
goes on down only while the lag does not shrink. "Keeps up" is
measured against the time after which HR, SpO2 and RR count as stale (60 simulated s):
more than half of it behind is too far (the ward would turn STALE for no clinical
reason), less than a fifth is keeping up. The page header
shows the pace and the lag (dashboard/ws.py `clock_fields`), the terminal a status line.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("crswatch.demo")
SLOW_AFTER = 0.5  # share of the stale time behind beyond which the simulation slows
FAST_BELOW = 0.2  # share of the stale time behind below which it speeds up again
CALM_S = 10.0  # wall seconds of keeping up before a step up
SETTLE_S = 5.0  # wall seconds a change of pace is given to show before the next slowdown
SLOWER, FASTER = 0.7, 1.25
MIN_SPEED = 1.0


@dataclass
class Pacing:
    """What the page and the status line show of the demo's pace (the daemon's
    `pacing`)."""

    asked: float  # the speed asked for (--speed)
    behind_s: float | None = None  # simulated seconds the daemon is behind; None: unknown
    slowdowns: int = 0
    history: list[tuple[float, float]] = field(default_factory=list)  # (wall, behind_s)


def newest_reading(ward) -> float | None:
    """The newest observation time the daemon holds, over every admitted bed."""
    times = [t for b in ward.beds.values() if (t := b.latest_ts) is not None]
    return max(times) if times else None


def behind(now: float, newest: float | None, cadence_s: float) -> float | None:
    if newest is None:
        return None
    return max(0.0, now - newest - cadence_s)


def next_speed(
    speed: float, asked: float, lag: float, stale_s: float, growing: bool, calm_for: float
) -> float:
    """The pace for the next second (pure): slower while the daemon is more than
    SLOW_AFTER of the stale time behind and the lag still grows; faster, one step at a
    time, after CALM_S wall seconds of keeping up; otherwise unchanged."""
    if lag > SLOW_AFTER * stale_s and growing:
        return max(MIN_SPEED, speed * SLOWER)
    if lag < FAST_BELOW * stale_s and calm_for >= CALM_S and speed < asked:
        return min(asked, speed * FASTER)
    return speed


async def pace(
    clock,
    ward,
    pacing: Pacing,
    stop: asyncio.Event,
    cadence_s: float = 5.0,
    stale_s: float = 60.0,
    period_s: float = 1.0,
    wall: Callable[[], float] | None = None,
) -> None:
    """Every period_s: measure, publish in `pacing`, and adjust `clock`'s speed."""
    wall = wall or clock.wall
    calm_since = wall()
    checked_at = -math.inf  # wall time of the last checkpoint (every SETTLE_S)
    lag_then: float | None = None  # the lag at that checkpoint
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), period_s)
        except TimeoutError:
            pass
        if stop.is_set():
            return
        now_wall = wall()
        try:
            lag = behind(clock(), newest_reading(ward), cadence_s)
        except Exception:  # any failure: the demo goes on at its pace; the log says why
            log.exception("cannot measure how far the daemon is behind")
            lag = None
        pacing.behind_s = lag
        if lag is None:
            continue
        if lag >= FAST_BELOW * stale_s:
            calm_since = now_wall
        # every SETTLE_S: is the lag not clearly shrinking since the last checkpoint?
        growing = False
        if now_wall - checked_at >= SETTLE_S:
            growing = lag_then is None or lag > 0.9 * lag_then
            checked_at, lag_then = now_wall, lag
        speed = next_speed(clock.speed, pacing.asked, lag, stale_s, growing, now_wall - calm_since)
        if not math.isclose(speed, clock.speed):
            if speed < clock.speed:
                pacing.slowdowns += 1
            log.warning(
                "pace %.0fx -> %.0fx (the daemon is %.0f simulated s behind)",
                clock.speed,
                speed,
                lag,
            )
            clock.set_speed(speed)
            calm_since = checked_at = now_wall
            lag_then = lag


def status_line(daemon, pacing: Pacing, clock_text: str) -> str:
    """One line: the ward's clock, the pace, the lag, beds, alerts and health."""
    speed = getattr(daemon.clock, "speed", 1.0)
    pace = f"{speed:.0f}x"
    if speed < pacing.asked * 0.95:
        pace += f" (slowed from {pacing.asked:.0f}x: the daemon could not keep up)"
    lag = "behind: -" if pacing.behind_s is None else f"behind {pacing.behind_s:.0f} s"
    alerts = daemon.alerts.active() if getattr(daemon, "alerts", None) else []
    tiers = [sum(1 for a in alerts if a.get("tier") == t) for t in (3, 2, 1)]
    failed = daemon.metrics.registry.get_sample_value("crswatch_publish_failures_total") or 0
    problems = daemon.problems()
    health = "ok" if not problems else "; ".join(problems)
    return (
        f"ward time {clock_text} | {pace} | {lag} | {len(daemon.ward.beds)} beds | "
        f"alerts T3 {tiers[0]} T2 {tiers[1]} T1 {tiers[2]} | "
        f"publish failures {failed:.0f} | health {health}"
    )
