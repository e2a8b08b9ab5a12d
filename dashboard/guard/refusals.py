"""Refused requests, counted and summarised for the audit chain: one `security.refused`
record per client address per minute, with how many of each kind (a failed login, a
throttled or locked login, 403 forbidden, 403 csrf, 403 origin...) and the first few user
names tried. A flood of refusals costs a counter, not a row per request; a single refusal
is still recorded (in the minute after it)."""

from __future__ import annotations

from typing import Any

MAX_NAMES = 5
MAX_SOURCES = 10_000  # distinct addresses kept per minute; the rest are counted together


class Refusals:
    def __init__(self) -> None:
        # (minute, source) -> {"counts": {kind: n}, "names": [...], "paths": [...]}
        self._open: dict[tuple[int, str], dict[str, Any]] = {}

    def count(
        self, now: float, source: str, kind: str, name: str | None = None, path: str = ""
    ) -> None:
        minute = int(now // 60)
        key = (minute, source)
        if key not in self._open and len(self._open) >= MAX_SOURCES:
            key = (minute, "(other addresses)")
        entry = self._open.setdefault(key, {"counts": {}, "names": [], "paths": []})
        entry["counts"][kind] = entry["counts"].get(kind, 0) + 1
        if name and name not in entry["names"] and len(entry["names"]) < MAX_NAMES:
            entry["names"].append(name[:64])
        if path and path not in entry["paths"] and len(entry["paths"]) < MAX_NAMES:
            entry["paths"].append(path[:200])

    def take(self, now: float, everything: bool = False) -> list[dict[str, Any]]:
        """The summaries of the minutes that are over (all of them when `everything`)."""
        minute = int(now // 60)
        done = [k for k in self._open if everything or k[0] < minute]
        out = []
        for k in sorted(done):
            entry = self._open.pop(k)
            out.append(
                {
                    "source": k[1],
                    "minute": k[0] * 60,
                    "total": sum(entry["counts"].values()),
                    **entry,
                }
            )
        return out
