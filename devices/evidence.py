"""When a true CRS onset became visible to the ward: the observation or care event that
defines it, for the truth file (`onset_grade` records) and the detection figure.

The truth grades the noise-free patient minute by minute; the ward sees only what the
monitor, the cuff, the thermometer and the charted care show, when it reaches the daemon.
An onset of grade >= 2 is defined once the delivered evidence shows it:
- CRS fever: the first reading >= 38.0 C of the current run of febrile readings (during
  CRS fever), or, once CRS fever was measured, tocilizumab or a steroid given (masked);
- and hypotension: a low cuff (systolic < 90 or mean < 65) confirmed by the next reading
  (the nurse repeats a low reading within minutes), or a vasopressor started; or
  hypoxaemia: two consecutive SpO2 samples below the patient's own threshold on room air
  (< 90 %, < 88 % on SpO2 scale 2), or oxygen started.
An onset of grade >= 3 is defined by the support that makes it: a vasopressor, or oxygen
by face mask, high flow or positive pressure (with CRS fever, or masked).
The defining time is when the last of these pieces arrived, and never before the true
onset itself (evidence the ward already had counts from the onset). An onset whose
evidence never arrives (the ward did not measure it while it lasted) is `unobservable`.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.clinical.thresholds import FEVER_C

HIGH_O2 = ("simple_face_mask", "venturi", "non_rebreather", "hfnc", "cpap", "bipap", "ventilator")
MASKING = ("tocilizumab", "dexamethasone", "methylprednisolone")
EPISODE_GAP_S = 24 * 3600.0  # below the grade this long: the next rise is a new onset


@dataclass
class Pending:
    grade: int
    true_ts: float
    masked: bool


@dataclass
class Defined:
    grade: int
    true_ts: float
    defined_ts: float | None  # None: never observable
    by: str
    masked: bool
    after_care: str | None


class Evidence:
    def __init__(self, spo2_scale: int = 1):
        self.spo2_low = 88 if spo2_scale == 2 else 90
        self.fever: tuple[float, str] | None = None  # (since, what) of the febrile run
        self.fever_ever: float | None = None
        self.masked: tuple[float, str] | None = None
        self.cuff_low: float | None = None  # a first low reading, not yet confirmed
        self.bp: tuple[float, str] | None = None
        self.spo2_first: float | None = None
        self.spo2: tuple[float, str] | None = None
        self.o2: tuple[float, str] | None = None
        self.o2_high: tuple[float, str] | None = None
        self.pressor: tuple[float, str] | None = None
        self.pending: list[Pending] = []
        self.above_since: dict[int, float | None] = {2: None, 3: None}
        self.open: dict[int, bool] = {2: False, 3: False}

    # -- what the ward is shown -----------------------------------------------------------
    def temp(self, ts: float, value: float, crs_fever: bool) -> list[Defined]:
        if value >= FEVER_C and crs_fever:
            if self.fever is None:
                self.fever = (ts, f"temperature {value:.1f} C")
            self.fever_ever = self.fever_ever or ts
        elif value < FEVER_C:
            self.fever = None
        return self.check(ts)

    def cuff(self, ts: float, sbp: float, mean: float | None) -> list[Defined]:
        low = sbp < 90 or (mean is not None and mean < 65)
        if not low:
            self.cuff_low, self.bp = None, None
        elif self.cuff_low is None:
            self.cuff_low = ts
        elif self.bp is None:
            self.bp = (ts, f"systolic {sbp:.0f} confirmed by a repeat cuff")
        return self.check(ts)

    def spo2_sample(self, ts: float, value: float) -> list[Defined]:
        low = value < self.spo2_low and self.o2 is None
        if not low:
            self.spo2_first, self.spo2 = None, None
        elif self.spo2_first is None:
            self.spo2_first = ts
        elif self.spo2 is None:
            self.spo2 = (ts, f"SpO2 {value:.0f} on room air, second sample")
        return self.check(ts)

    def care(self, ts: float, body: dict) -> list[Defined]:
        kind = body.get("type")
        if kind == "oxygen":
            device = body.get("device", "room_air")
            if device == "room_air":
                self.o2 = self.o2_high = None
            else:
                self.o2 = self.o2 or (ts, f"oxygen started ({device})")
                high = device in HIGH_O2 or (body.get("flow_lpm") or 0) > 6
                self.o2_high = (self.o2_high or (ts, f"oxygen by {device}")) if high else None
        elif kind == "vasopressor":
            if body.get("action") == "stop":
                self.pressor = None
            else:
                self.pressor = self.pressor or (ts, f"{body.get('drug')} started")
        elif kind == "medication" and body.get("drug") in MASKING:
            if self.fever_ever is not None and self.masked is None:
                self.masked = (ts, f"{body['drug']} after CRS fever")
        return self.check(ts)

    # -- the truth's side -----------------------------------------------------------------
    def true_grade(self, ts: float, grade: int, fever_absent: bool) -> list[Defined]:
        """The true grade at ts: a rise to >= 2 (or >= 3) starts an onset unless the grade
        was there within the last EPISODE_GAP_S."""
        for g in (2, 3):
            if grade >= g:
                if not self.open[g]:
                    since = self.above_since[g]
                    if since is None or ts - since > EPISODE_GAP_S:
                        self.pending.append(Pending(g, ts, fever_absent))
                    self.open[g] = True
                self.above_since[g] = ts
            else:
                self.open[g] = False
        return self.check(ts)

    def check(self, ts: float) -> list[Defined]:
        done, keep = [], []
        for p in self.pending:
            found = self._defined(p)
            if found is None:
                if self.above_since[p.grade] is not None and ts - self.above_since[p.grade] > (
                    EPISODE_GAP_S
                ):
                    done.append(Defined(p.grade, p.true_ts, None, "never shown", p.masked, None))
                else:
                    keep.append(p)
                continue
            at, by, care = found
            done.append(Defined(p.grade, p.true_ts, max(at, p.true_ts), by, p.masked, care))
        self.pending = keep
        return done

    def unresolved(self) -> list[Defined]:
        out = [
            Defined(p.grade, p.true_ts, None, "never shown", p.masked, None) for p in self.pending
        ]
        self.pending = []
        return out

    def _defined(self, p: Pending) -> tuple[float, str, str | None] | None:
        fever = self.fever or self.masked
        if fever is None:
            return None
        if p.grade >= 3:
            support = [s for s in (self.pressor, self.o2_high) if s is not None]
        else:
            support = [s for s in (self.bp, self.pressor, self.spo2, self.o2) if s is not None]
        if not support:
            return None
        first = min(support, key=lambda s: s[0])
        last = max(first, fever, key=lambda s: s[0])
        care = None
        if last is self.pressor:
            care = "vasopressor"
        elif last is self.o2 or last is self.o2_high:
            care = "oxygen"
        return last[0], f"{fever[1]}; {first[1]}", care
