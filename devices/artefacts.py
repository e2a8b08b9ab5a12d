"""Real-world mess for one bed, planned up front: pure, seeded, clock-free.

Every artefact is a valid message (the daemon must accept it) that a careful reader should
distrust, and every artefact is reported as ground truth:

| kind | what the bed does |
|---|---|
| spo2_dropout | SpO2 left out of the fast vitals (probe off) for 20 s - 5 min |
| motion | SpO2 spuriously low (65-88 %) for 3-15 s |
| lead_off | heart rate 0 and no respiration rate (ECG lead off) for 10-90 s |
| duplicate | the next vitals message is sent twice (identical payload) |
| late | every message of a 2-10 min window is held and sent at its end, original ts kept |
| offline | the connection drops abruptly for 2-30 min: the broker publishes the Last Will |
|  | `offline`; readings of that time are lost, care events go out on return; then `online` |
| spo2_low | the probe slips: SpO2 falsely low (75-88 %) for 50-190 s (1-3 one-minute samples) |
| rr_burst | impedance respiration disturbed by movement: RR about 40, then about 32 (60-150 s) |
| cuff_low | the next cuff reading is falsely low (systolic 72-88); the nurse repeats it |

A lead off lasts 1-3 min (HR 0 for one to three one-minute samples). The last three kinds
are drawn after the others, so a seed's earlier artefacts stay where they were.

Rates are per bed per simulated day, multiplied by `scale` (0 turns artefacts off).
Offline and late windows never overlap (a held burst is never sent while offline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = (
    "spo2_dropout",
    "motion",
    "lead_off",
    "duplicate",
    "late",
    "offline",
    "spo2_low",
    "rr_burst",
    "cuff_low",
)
RATE_PER_DAY = {
    "spo2_dropout": 4.0,
    "motion": 8.0,
    "lead_off": 2.0,
    "duplicate": 12.0,
    "late": 1.5,
    "offline": 0.7,
    "spo2_low": 3.0,
    "rr_burst": 1.5,
    "cuff_low": 0.7,
}
DURATION_S = {
    "spo2_dropout": (20, 300),
    "motion": (3, 15),
    "lead_off": (60, 180),
    "duplicate": (0, 0),
    "late": (120, 600),
    "offline": (120, 1800),
    "spo2_low": (50, 190),
    "rr_burst": (60, 150),
    "cuff_low": (0, 0),
}
SETTLE_S = 60.0  # no artefact in the first minute (the admission and first readings)
GAP_S = 60.0  # between an offline and a late window


@dataclass(frozen=True, slots=True)
class Window:
    kind: str
    start: float
    end: float

    def truth(self) -> dict:
        """The ground-truth fields of this artefact (ts is added by the bed)."""
        out: dict = {"artefact": self.kind}
        if self.kind == "offline":
            out["duration_s"] = self.end - self.start
        elif self.kind == "late":
            out["held_s"] = self.end - self.start
        elif self.kind not in ("duplicate", "cuff_low"):
            out["duration_s"] = self.end - self.start
        return out


class _Cursor:
    """Which window of one kind covers ts, for ts that never decrease."""

    __slots__ = ("windows", "i")

    def __init__(self, windows: list[Window]):
        self.windows, self.i = windows, 0

    def at(self, ts: float) -> Window | None:
        w = self.windows
        while self.i < len(w) and w[self.i].end <= ts:
            self.i += 1
        if self.i < len(w) and w[self.i].start <= ts < w[self.i].end:
            return w[self.i]
        return None


class ArtefactPlan:
    def __init__(self, rng: np.random.Generator, start: float, end: float, scale: float = 1.0):
        self.rng = rng
        self.windows: dict[str, list[Window]] = {}
        for kind in KINDS:  # fixed order: the same seed gives the same plan
            self.windows[kind] = self._draw(kind, start + SETTLE_S, end, scale)
        offline = self.windows["offline"]
        self.windows["late"] = [
            w
            for w in self.windows["late"]
            if not any(o.start - GAP_S < w.end and w.start < o.end + GAP_S for o in offline)
        ]
        self._cursors = {k: _Cursor(v) for k, v in self.windows.items()}
        self._dups = [w.start for w in self.windows["duplicate"]]
        self._dup_i = 0
        self._cuffs = [w.start for w in self.windows["cuff_low"]]
        self._cuff_i = 0

    def _draw(self, kind: str, start: float, end: float, scale: float) -> list[Window]:
        rate = RATE_PER_DAY[kind] * scale
        if rate <= 0:
            return []
        mean_gap = 86400.0 / rate
        low, high = DURATION_S[kind]
        out, t = [], start + float(self.rng.exponential(mean_gap))
        while t < end:
            length = float(round(self.rng.uniform(low, high)))
            t = float(round(t))
            out.append(Window(kind, t, min(t + length, end)))
            t += length + float(self.rng.exponential(mean_gap))
        return out

    def all(self) -> list[Window]:
        """Every planned window, by start time (duplicates are points)."""
        return sorted(
            (w for ws in self.windows.values() for w in ws),
            key=lambda w: (w.start, KINDS.index(w.kind)),
        )

    def active(self, kind: str, ts: float) -> Window | None:
        """The window of `kind` covering ts (call with non-decreasing ts per kind)."""
        return self._cursors[kind].at(ts)

    def take_duplicate(self, ts: float) -> bool:
        """True once per planned duplicate: for the first vitals message at or after it."""
        if self._dup_i < len(self._dups) and self._dups[self._dup_i] <= ts:
            while self._dup_i < len(self._dups) and self._dups[self._dup_i] <= ts:
                self._dup_i += 1
            return True
        return False

    def take_cuff_low(self, ts: float) -> bool:
        """True once per planned falsely low cuff reading: the first cuff at or after it."""
        if self._cuff_i < len(self._cuffs) and self._cuffs[self._cuff_i] <= ts:
            while self._cuff_i < len(self._cuffs) and self._cuffs[self._cuff_i] <= ts:
                self._cuff_i += 1
            return True
        return False

    def apply(self, ts: float, values: dict) -> tuple[dict, list[str]]:
        """The fast vitals of one time point as the monitor reports them, and the kinds
        of artefact that changed them."""
        hit = []
        if self.active("lead_off", ts) and "hr" in values:
            values = {**values, "hr": 0}
            values.pop("rr", None)
            hit.append("lead_off")
        if self.active("spo2_dropout", ts) and "spo2" in values:
            values = {k: v for k, v in values.items() if k != "spo2"}
            hit.append("spo2_dropout")
        elif self.active("motion", ts) and "spo2" in values:
            values = {**values, "spo2": int(self.rng.integers(65, 89))}
            hit.append("motion")
        elif self.active("spo2_low", ts) and "spo2" in values:
            values = {**values, "spo2": int(self.rng.integers(75, 89))}
            hit.append("spo2_low")
        burst = self.active("rr_burst", ts)
        if burst is not None and "rr" in values:
            first = ts < burst.start + 0.5 * (burst.end - burst.start)
            rr = self.rng.integers(38, 43) if first else self.rng.integers(30, 35)
            values = {**values, "rr": int(rr)}
            hit.append("rr_burst")
        return values, hit
