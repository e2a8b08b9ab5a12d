"""Delayed labels: a snapshot (x, t) per patient every `interval_s`, labelled hours later.

While a patient is below CRS grade 2, the service offers a snapshot at each update; one is
taken when `interval_s` has passed since the patient's newest pending snapshot (or none is
pending). Each snapshot also keeps `p`, the model's prediction made AT time t, for delayed
progressive validation (quality.py). A snapshot leaves the pending queue exactly once:
- label 1 as soon as grade >= 2 is reached at t2 <= t + horizon (`reached`);
- label 0 once t + horizon has passed without grade >= 2 (`expire`): the horizon is judged
  by the times the service passes in (the patient's own assessments, or the ward-wide
  tick's `Forecaster.advance`), never by a wall clock here;
- at discharge at td (`discharge`): snapshots whose horizon passed by td are labelled 0 as
  usual; the rest are censored: dropped, neither learned nor scored. A discharge inside the
  horizon says nothing about the outcome (an ICU transfer is a discharge from this ward; so
  is a well patient going home), and learning it as 0 would teach the model that
  deteriorating patients are safe.
Grade 2 at exactly t + horizon counts (label 1) when the service checks grades before
expiring, which it does.

In memory x is packed as an array of doubles in features.FEATURES order (NaN = absent):
~24 snapshots per patient at 30 min / 12 h, a few hundred bytes each. `to_rows()` gives
JSON-serialisable rows (x as a dict of the present features); `from_rows()` rebuilds.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .features import FEATURES

_INDEX = {name: i for i, name in enumerate(FEATURES)}
_NAN = float("nan")


def pack(x: dict[str, float]) -> array:
    """x -> doubles in FEATURES order, NaN where absent (features not in FEATURES are
    dropped: they cannot be stored)."""
    a = array("d", [_NAN] * len(FEATURES))
    for k, v in x.items():
        i = _INDEX.get(k)
        if i is not None:
            a[i] = v
    return a


def unpack(a: array) -> dict[str, float]:
    return {name: v for name, v in zip(FEATURES, a, strict=True) if not math.isnan(v)}


@dataclass(slots=True)
class Pending:
    patient: str
    t: float
    x: array  # packed
    p: float | None  # the prediction made at t (None: none was made)

    @property
    def key(self) -> str:
        return f"{self.patient}@{self.t:.3f}"

    def to_row(self) -> dict[str, Any]:
        return {
            "kind": "pending",
            "key": self.key,
            "data": {"patient": self.patient, "t": self.t, "x": unpack(self.x), "p": self.p},
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Pending:
        d = row["data"]
        return cls(
            d["patient"], float(d["t"]), pack(d["x"]), None if d.get("p") is None else float(d["p"])
        )


Labelled = list[tuple[Pending, int]]


class Labels:
    def __init__(self, interval_s: float = 1800.0, horizon_s: float = 43200.0):
        if interval_s <= 0 or horizon_s <= 0:
            raise ValueError("interval_s and horizon_s must be positive")
        self.interval_s = float(interval_s)
        self.horizon_s = float(horizon_s)
        self.pending: dict[str, deque[Pending]] = {}
        self.censored = 0  # snapshots dropped at discharge, in this process

    def count(self) -> int:
        return sum(len(q) for q in self.pending.values())

    def is_due(self, patient: str, t: float) -> bool:
        """Would a snapshot at t be taken? (Nothing pending, or the newest is interval_s
        old.) Lets the caller skip predicting for a snapshot it will not take."""
        q = self.pending.get(patient)
        return not q or t - q[-1].t >= self.interval_s

    def take(self, patient: str, t: float, x: dict[str, float], p: float | None) -> bool:
        """Keep (x, t, p) if a snapshot is due at t; True if taken."""
        if not self.is_due(patient, t):
            return False
        self.pending.setdefault(patient, deque()).append(Pending(patient, t, pack(x), p))
        return True

    def reached(self, patient: str, t: float) -> Labelled:
        """CRS grade >= 2 at t: every pending snapshot leaves, 1 if t is within its horizon
        (0 for one whose horizon had passed without the service expiring it)."""
        q = self.pending.pop(patient, None) or ()
        return [(s, int(t - s.t <= self.horizon_s)) for s in q]

    def expire(self, patient: str, t: float) -> Labelled:
        """Label 0 every pending snapshot whose horizon has passed by t (t >= ts + horizon),
        the patient being below grade 2 all along (the caller checks grades first)."""
        q = self.pending.get(patient)
        out: Labelled = []
        while q and t - q[0].t >= self.horizon_s:
            out.append((q.popleft(), 0))
        if q is not None and not q:
            del self.pending[patient]
        return out

    def discharge(self, patient: str, t: float) -> Labelled:
        """Horizon passed by t: labelled 0; the rest censored (dropped)."""
        out = self.expire(patient, t)
        dropped = self.pending.pop(patient, None)
        self.censored += len(dropped or ())
        return out

    # -- persistence -----------------------------------------------------------------------

    def to_rows(self) -> list[dict[str, Any]]:
        return [s.to_row() for q in self.pending.values() for s in q]

    def load_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add the "pending" rows (others are ignored), replacing what is held."""
        self.pending.clear()
        found = sorted(
            (Pending.from_row(r) for r in rows if r.get("kind") == "pending"),
            key=lambda s: (s.patient, s.t),
        )
        for s in found:
            self.pending.setdefault(s.patient, deque()).append(s)

    @classmethod
    def from_rows(
        cls, rows: Iterable[dict[str, Any]], interval_s: float = 1800.0, horizon_s: float = 43200.0
    ) -> Labels:
        labels = cls(interval_s, horizon_s)
        labels.load_rows(rows)
        return labels
