"""How far behind the clock the ward's input arrives: the daemon's own lag, measured directly.

Every batch of readings taken in says how old its newest reading was when it was applied
(`observe`). The lag is the smallest such age over the last WINDOW_S of the clock: the
freshest evidence the ward gave. One device with a slow clock or a gateway flushing its buffer
does not move it while any other bed reports on time; a daemon behind its input (a backlog
after a restart, a slow machine, a demo clock running fast) moves it for every bed at once.

With no reading applied in the window the lag is 0: nothing says the input is late, so a
silent bed is judged on the clock (its feed goes stale and lost as it should). The lag is
capped (`cap_s`, the fast vitals' lost window): further behind, the daemon raises its own lag
alert and no bed's feed is judged by it; below the cap, a ward of one bed whose only reading
came hours late is not taken to be hours behind.

The ward judges feeds as of `clock - lag` (Ward.horizon): a reading that is still on its way
through the daemon's own queue is not a patient's feed gone stale.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 60.0  # the evidence kept: the freshest reading of the last minute
BUCKET_S = 5.0  # kept as the smallest age per bucket of the clock


class InputLag:
    __slots__ = ("cap_s", "window_s", "_buckets", "_asked")

    def __init__(self, cap_s: float, window_s: float = WINDOW_S) -> None:
        self.cap_s = cap_s
        self.window_s = window_s
        self._buckets: deque[tuple[int, float]] = deque()  # (bucket, smallest age), in order
        # (now, the lag then) of the last question: every bed graded in one pass asks it
        self._asked: tuple[float, float] | None = None

    def observe(self, now: float, newest_ts: float) -> None:
        """A batch applied at `now` whose newest reading was taken at `newest_ts`."""
        age = max(0.0, now - newest_ts)
        bucket = int(now // BUCKET_S)
        buckets = self._buckets
        self._asked = None
        self._expire(now)
        if buckets and buckets[-1][0] == bucket:
            if age < buckets[-1][1]:
                buckets[-1] = (bucket, age)
        else:
            buckets.append((bucket, age))

    def __call__(self, now: float) -> float:
        """The lag at `now`: the smallest age seen in the window (0 with none), at most
        `cap_s`."""
        asked = self._asked
        if asked is not None and asked[0] == now:
            return asked[1]
        self._expire(now)
        lag = min(self.cap_s, min((age for _, age in self._buckets), default=0.0))
        self._asked = (now, lag)
        return lag

    def _expire(self, now: float) -> None:
        oldest = int((now - self.window_s) // BUCKET_S)
        buckets = self._buckets
        if buckets and buckets[-1][0] > now // BUCKET_S:  # the clock was set back
            buckets.clear()
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()
