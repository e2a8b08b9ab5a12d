"""What stands between a password guesser and the accounts, before any password is checked.

* `Sources`: failed logins per client address (in memory). SOURCE_FREE failures are free
  (a password mistyped now and then); after them the address must wait before its next try,
  1 s doubling up to SOURCE_MAX_WAIT_S (429 `throttled`, with Retry-After). Logins in flight
  count as failures until they end, so a burst cannot slip past the count. An address is
  forgotten SOURCE_FORGET_S after its last failure. A guesser on one address needs about
  17 minutes to reach an account's lock-out, and hours to keep an account locked: the
  lock-out cannot be turned into an easy way to keep a nurse out.
* `Gate.account(name)`: one login in flight per account name (an asyncio lock): the
  account's failure count is read, checked, verified and written by one login at a time,
  so no burst defeats the lock-out.
* `Gate.verify`: argon2 (64 MiB, tens of ms) in its own small thread pool, never the one
  the patient pages use; at most `workers` at once, and at most `queue` logins waiting.
  Past that a login is answered 503 `busy` at once (`Busy`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from monitor.store.accounts import verify_password

SOURCE_FREE = 10
SOURCE_MAX_WAIT_S = 15 * 60.0
SOURCE_FORGET_S = 15 * 60.0
MAX_SOURCES = 50_000  # addresses remembered; the oldest are forgotten first


class Busy(Exception):
    """Too many logins waiting for a password check."""


class Sources:
    def __init__(self) -> None:
        # address -> [failures, time of the last failure, in flight]
        self._seen: OrderedDict[str, list] = OrderedDict()

    def _entry(self, source: str, now: float) -> list:
        e = self._seen.get(source)
        if e is not None and e[2] == 0 and now - e[1] > SOURCE_FORGET_S:
            e = None
            del self._seen[source]
        if e is None:
            e = self._seen[source] = [0, now, 0]
            while len(self._seen) > MAX_SOURCES:
                self._seen.popitem(last=False)
        self._seen.move_to_end(source)
        return e

    def wait_s(self, source: str, now: float) -> float:
        """Seconds this address must wait before its next try (0: it may try now)."""
        failures, last, flying = self._entry(source, now)
        if failures + flying < SOURCE_FREE:
            return 0.0
        if flying:  # its earlier tries are still being checked
            return 1.0
        wait = min(2.0 ** (failures - SOURCE_FREE), SOURCE_MAX_WAIT_S)
        return max(0.0, last + wait - now)

    def begin(self, source: str, now: float) -> None:
        self._entry(source, now)[2] += 1

    def end(self, source: str, now: float, failed: bool) -> None:
        e = self._entry(source, now)
        e[2] = max(0, e[2] - 1)
        if failed:
            e[0] += 1
            e[1] = now

    def failures(self, source: str) -> int:
        e = self._seen.get(source)
        return e[0] if e else 0


class Gate:
    def __init__(self, workers: int, queue: int):
        self.sources = Sources()
        self.workers, self.queue = workers, queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="login-verify")
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}  # name -> logins holding or waiting for its lock
        self.in_progress = 0  # logins admitted and not yet answered

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """A place among the logins being handled, or Busy at once."""
        if self.in_progress >= self.workers + self.queue:
            raise Busy
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1

    @contextlib.asynccontextmanager
    async def account(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        self._users[name] = self._users.get(name, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[name] -= 1
            if not self._users[name]:
                del self._users[name]
                del self._locks[name]

    async def verify(self, password_hash: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, verify_password, password_hash, password)

    async def run(self, fn, *args):
        """Another argon2 job (a re-hash after login) in the same bounded pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
