"""The garbage collector, tuned for a daemon that holds a large heap for weeks.

Measured at 1,000 beds and 1 reading per bed per second (benchmarks/e2e.py): with
CPython's default thresholds (700, 10, 10) a full collection ran every 3 s or so and held
the event loop for 60-117 ms each time, which was the whole p99 latency. Objects that live
about a second (each bed's last assessment, state and pending items) survived the young
collections, reached the oldest generation, and soon made up the quarter of it that
triggers a full scan of everything, the ward included.

So:
  * young collections are rarer (every YOUNG allocations), so that most second-long
    objects die in generation 0 or 1, freed by reference counting as usual;
  * after startup, and then every FULL_EVERY_S, one full collection runs and the
    survivors are frozen (gc.freeze): later collections skip them. Reference counting
    still frees a frozen object as soon as it is unused; only a reference cycle among
    frozen objects waits for the next full collection.
Every pause is observed in crswatch_gc_pause_seconds.
"""

from __future__ import annotations

import gc
import time

YOUNG = 10_000
FULL_EVERY_S = 3600.0


def configure(observe=None) -> None:
    """Set the thresholds; `observe(seconds, generation)` is called after each pause."""
    gc.set_threshold(YOUNG, 20, 10)
    if observe is not None:
        started = [0.0]

        def callback(phase: str, info: dict) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                observe(time.perf_counter() - started[0], info["generation"])

        gc.callbacks.append(callback)


def full_and_freeze() -> None:
    """A full collection of everything, then freeze what survived."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def for_batch() -> None:
    """Replay and evaluate (and their benchmark): they hold a ward's state and allocate
    per message, as the daemon does, and their heap grows for the whole recording: with
    CPython's default thresholds, full collections rescan it again and again (README,
    Performance, "Replay", has the cost)."""
    configure()
    full_and_freeze()
