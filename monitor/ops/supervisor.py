"""One supervisor for every long-running task of the daemon.

A monitor whose grading loop has died must not look healthy. Each task runs under
`Supervisor.run`: when it raises, the traceback is logged, the failure is reported at once
(`on_failure`: the daemon raises its tier-3 alert), `problems()` names the task (so
`/healthz` answers 503) and the task is started again after a backoff that doubles. A task
is healthy again once it has run `healthy_after_s` since its restart without failing. A task
that fails `max_failures` times within `window_s` is not restarted: `on_fatal` is called
(the daemon stops and exits non-zero, so that systemd restarts the process).

`until_signal` is how a supervised process waits for its end: SIGINT or SIGTERM, or the
fatal failure above (`main.py run`, `main.py hospital`).

Times here are the machine's monotonic clock, not the daemon's (possibly simulated) clock:
backoff and failure windows are about the process, not about the ward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("crswatch.supervisor")

TaskFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class TaskHealth:
    name: str
    failures: deque[float] = field(default_factory=deque)  # monotonic times, in the window
    restarts: int = 0
    last_error: str = ""
    failed_at: float | None = None  # the last failure (None: never failed)
    running_since: float | None = None  # the current run's start (None: not running)


class Supervisor:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 300.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        healthy_after_s: float = 30.0,
        on_failure: Callable[[str, BaseException], None] = lambda name, exc: None,
        on_fatal: Callable[[str], None] = lambda reason: None,
        monotonic: Callable[[], float] = time.monotonic,
        stopping: asyncio.Event | None = None,
    ):
        self.max_failures, self.window_s = max_failures, window_s
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.healthy_after_s = healthy_after_s
        self.on_failure, self.on_fatal = on_failure, on_fatal
        self.monotonic = monotonic
        self.stopping = stopping or asyncio.Event()  # set: nothing is restarted any more
        self.health: dict[str, TaskHealth] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.fatal: str | None = None  # why the daemon must stop, once it must

    def start(self, name: str, factory: TaskFactory) -> asyncio.Task:
        """Run `factory()` as task `name`, started again after each failure."""
        self.health[name] = TaskHealth(name)
        task = asyncio.create_task(self.run(name, factory), name=name)
        self.tasks[name] = task
        return task

    async def run(self, name: str, factory: TaskFactory) -> None:
        h = self.health.setdefault(name, TaskHealth(name))
        delay = self.backoff_min_s
        while True:
            h.running_since = self.monotonic()
            try:
                await factory()
                h.running_since = None
                return  # a loop returns only when the daemon stops
            except asyncio.CancelledError:
                h.running_since = None
                raise
            except Exception as exc:
                now = self.monotonic()
                if h.failed_at is not None and now - h.failed_at > self.healthy_after_s:
                    delay = self.backoff_min_s  # it had recovered: a fresh failure
                h.running_since = None
                h.failed_at = now
                h.last_error = f"{type(exc).__name__}: {exc}"[:300]
                h.failures.append(now)
                while h.failures and now - h.failures[0] > self.window_s:
                    h.failures.popleft()
                log.error("task %s failed; restarting in %.1f s", name, delay, exc_info=exc)
                self._report(name, exc)
                if len(h.failures) >= self.max_failures:
                    self.fatal = (
                        f"task {name}: failed {len(h.failures)} times in "
                        f"{self.window_s:g} s (last: {h.last_error}); not restarted"
                    )
                    log.critical("%s: the daemon stops", self.fatal)
                    self.on_fatal(self.fatal)
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            delay = min(delay * 2, self.backoff_max_s)
            h.restarts += 1
            log.warning("task %s restarted (restart %d)", name, h.restarts)

    def _report(self, name: str, exc: BaseException) -> None:
        try:
            self.on_failure(name, exc)
        except Exception:  # the report must not take the supervisor down with it
            log.exception("reporting the failure of task %s failed", name)

    def problems(self) -> list[str]:
        """One line per task that failed and has not yet run healthy_after_s since."""
        now = self.monotonic()
        out = []
        for h in self.health.values():
            if h.failed_at is None:
                continue
            up = h.running_since is not None and now - h.running_since >= self.healthy_after_s
            if up:
                continue
            state = "restarted" if h.running_since is not None else "waiting to restart"
            if self.fatal and self.fatal.startswith(f"task {h.name}:"):
                state = "stopped"
            out.append(
                f"task {h.name}: failed ({h.last_error}); {state}, "
                f"{len(h.failures)} failure(s) in {self.window_s:g} s"
            )
        return out

    def faults(self, what: dict[str, str]) -> list[tuple[str, str]]:
        """(kind, reason) of each failing task, for the daemon's own tier-3 alert; `what`
        says what stops while the named task is down."""
        out = []
        for line in self.problems():
            name = line.split(":", 1)[0].removeprefix("task ")
            stops = what.get(name, "its work is not being done")
            out.append((f"task:{name}", f"the daemon's {line}; meanwhile {stops}"))
        return out

    async def cancel_all(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def until_signal(fatal: asyncio.Event, on_hup: Callable[[], None] | None = None) -> None:
    """Wait for SIGINT or SIGTERM, or for `fatal`; SIGHUP calls `on_hup` meanwhile."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [signal.SIGINT, signal.SIGTERM]
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    if on_hup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        signals.append(signal.SIGHUP)
    waits = [asyncio.create_task(e.wait()) for e in (stopping, fatal)]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
