"""Per-patient features for the CRS forecast, computed incrementally from bedside snapshots.

Plain Python and clock-free: `PatientFeatures.update(snapshot, t, ...)` folds in what the
scales read at t (monitor.state.bedstate.BedState.snapshot_at) and returns `x`, a dict of floats.
A feature that is not known is absent from `x`, never 0-as-normal (river's estimators skip
missing keys). The state is a few numbers and at most TEMP_KEEP temperature readings
(~1-2 KB per patient); `to_dict()`/`from_dict()` persist it as JSON.

No future: x(t) uses only the snapshot at t, the readings' times (at or before t), and the
state folded in by earlier updates. An update with a t older than the last one changes
nothing (the state never runs backwards); it returns the features as of the last update.

Decisions:
- Baselines (heart rate, systolic, mean pressure) are the patient's OWN: a time-weighted
  EWMA (time constant BASE_TAU_S; a plain running mean while younger than that), known once
  it has learned BASE_MIN_S. It is GATED: it learns only until the first temperature
  >= GATE_C (slightly below the CRS fever, so the rise toward the fever is not learned) or
  a recorded fever (snapshot.fever_masked), and never again in this admission, so it does
  not learn from the episode it should detect. Each update moves it by at most BASE_CLIP
  from where it was (a slow pre-fever drift is learned slowly, an artefact barely).
- Heart rate, respiration and SpO2 (sampled every few seconds) are smoothed by a
  time-weighted EWMA (FAST_TAU_S; restarted after a gap of FAST_RESET_S), so the risk does
  not flicker with every sample; a value is shown only while the snapshot has one.
- Temperature slope: least squares over the readings of the last SLOPE_WINDOW_S before the
  newest reading (with the one before, if only one is inside), in C/h; unknown with fewer
  than two readings 30 min apart, or when the newest is older than SLOPE_STALE_S. Readings
  are told apart by their time (`temp_ts`, from Assessment.vitals); without it a changed
  value is taken as a new reading at t.
- Oxygen as an ordinal: room air 0; blow-by, nasal cannula <= 6 L/min 1 (low-flow);
  nasal cannula > 6 L/min, face masks, Venturi, HFNC 2; CPAP, BiPAP, ventilator 3.
- Cohort: `autoimmune` is 1 when the indication names an autoimmune disease, 0 when it names
  a cancer; with no recognisable indication, 0 when the product is a licensed oncology
  CAR-T; otherwise absent (see `cohort`).
- NEWS2 total only when complete (an incomplete total is a lower bound).
"""

from __future__ import annotations

import math
import re
from typing import Any

from monitor.clinical.thresholds import FEVER_C

GATE_C = 37.8  # the baseline stops learning for good at the first temperature >= this
BASE_TAU_S = 6 * 3600.0
BASE_MIN_S = 3600.0  # a baseline is known once it has learned this long
BASE_MAX_DT_S = 3600.0  # a longer gap between updates counts as this much
BASE_CLIP = {"hr": 15.0, "sbp": 15.0, "map": 12.0}
FAST = ("hr", "rr", "spo2")
FAST_TAU_S = 900.0
FAST_RESET_S = 1800.0
TEMP_KEEP = 8
SLOPE_WINDOW_S = 4 * 3600.0
SLOPE_PREV_MAX_S = 6 * 3600.0
SLOPE_MIN_SPAN_S = 1800.0
SLOPE_STALE_S = 6 * 3600.0
FEVER_HOURS_CAP = 72.0

# Every feature, in a fixed order (labels.py packs x in this order).
FEATURES = (
    "hours_since_infusion",
    "age",
    "autoimmune",
    "prior_grade2",
    "temp_c",
    "temp_max",
    "temp_slope",
    "febrile",
    "fever_ever",
    "hours_since_fever",
    "hr",
    "hr_delta",
    "sbp",
    "sbp_delta",
    "map_delta",
    "shock_index",
    "spo2",
    "o2_level",
    "pressor",
    "rr",
    "news2",
)
# Plausible ranges: a value outside is clipped (an artefact must not dominate a sum).
CLIP = {
    "hr": (20.0, 220.0),
    "sbp": (40.0, 250.0),
    "map": (25.0, 200.0),
    "rr": (3.0, 60.0),
    "spo2": (50.0, 100.0),
    "temp_c": (33.0, 43.0),
    "temp_slope": (-3.0, 3.0),
    "shock_index": (0.2, 3.0),
    "hours_since_infusion": (-48.0, 30 * 24.0),
}
O2_LEVEL = {
    "room_air": 0,
    "blow_by": 1,
    "nasal_cannula": 1,
    "simple_face_mask": 2,
    "venturi": 2,
    "non_rebreather": 2,
    "hfnc": 2,
    "cpap": 3,
    "bipap": 3,
    "ventilator": 3,
}
LOW_FLOW_MAX_LPM = 6.0

_WORD = re.compile(r"[a-z0-9]+")
AUTOIMMUNE_WORDS = frozenset(
    {
        "lupus",
        "sle",
        "myositis",
        "dermatomyositis",
        "polymyositis",
        "sclerosis",
        "scleroderma",
        "vasculitis",
        "arthritis",
        "myasthenia",
        "neuromyelitis",
        "autoimmune",
        "sjogren",
        "pemphigus",
        "antisynthetase",
        "anca",
    }
)
ONCOLOGY_WORDS = frozenset(
    {
        "lymphoma",
        "leukaemia",
        "leukemia",
        "myeloma",
        "cancer",
        "tumour",
        "tumor",
        "carcinoma",
        "sarcoma",
        "glioma",
        "glioblastoma",
        "neuroblastoma",
        "dlbcl",
        "cll",
        "all",
        "mcl",
        "fl",
    }
)
ONCOLOGY_PRODUCTS = (
    "axicabtagene",
    "tisagenlecleucel",
    "lisocabtagene",
    "brexucabtagene",
    "idecabtagene",
    "ciltacabtagene",
    "obecabtagene",
    "relmacabtagene",
)


def cohort(indication: str | None, product: str | None) -> float | None:
    """1.0 autoimmune, 0.0 oncology, None unknown. The indication decides (a word of it names
    an autoimmune disease or a cancer; a cancer word wins a tie: "lymphoma with lupus" is
    treated as oncology); failing that a licensed oncology product means oncology."""
    words = set(_WORD.findall((indication or "").lower()))
    if words & ONCOLOGY_WORDS:
        return 0.0
    if words & AUTOIMMUNE_WORDS:
        return 1.0
    name = (product or "").lower()
    if any(p in name for p in ONCOLOGY_PRODUCTS):
        return 0.0
    return None


def o2_level(device: str | None, flow_lpm: float | None) -> int | None:
    """The oxygen ordinal (module docstring); None for an unknown device."""
    if device is None or device not in O2_LEVEL:
        return None
    if device == "nasal_cannula" and flow_lpm is not None and flow_lpm > LOW_FLOW_MAX_LPM:
        return 2
    return O2_LEVEL[device]


def _clip(name: str, value: float) -> float:
    lo, hi = CLIP.get(name, (-math.inf, math.inf))
    return float(min(hi, max(lo, value)))


def temp_slope(readings: list[list[float]], t: float) -> float | None:
    """C/h from time-sorted [ts, value] readings (module docstring), or None."""
    if not readings or t - readings[-1][0] > SLOPE_STALE_S:
        return None
    newest = readings[-1][0]
    used = [r for r in readings if newest - r[0] <= SLOPE_WINDOW_S]
    if len(used) < 2:
        before = [r for r in readings if SLOPE_WINDOW_S < newest - r[0] <= SLOPE_PREV_MAX_S]
        used = before[-1:] + used
    if len(used) < 2 or used[-1][0] - used[0][0] < SLOPE_MIN_SPAN_S:
        return None
    n = len(used)
    mt = sum(r[0] for r in used) / n
    mv = sum(r[1] for r in used) / n
    sxx = sum((r[0] - mt) ** 2 for r in used)
    sxy = sum((r[0] - mt) * (r[1] - mv) for r in used)
    return _clip("temp_slope", sxy / sxx * 3600.0)


class PatientFeatures:
    """The feature state of one admission. `admission`: monitor.ingest.messages.Admission (or any
    object with age, product, indication, infusion_ts), or None when restoring."""

    __slots__ = (
        "infusion_ts",
        "age",
        "autoimmune",
        "first_t",
        "last_t",
        "temps",
        "temp_max",
        "gate_t",
        "fever_t",
        "base",
        "base_t",
        "prior_grade2",
        "fast",
    )

    def __init__(self, admission: Any = None):
        self.infusion_ts = getattr(admission, "infusion_ts", None)
        age = getattr(admission, "age", None)
        self.age = None if age is None else float(age)
        self.autoimmune = cohort(
            getattr(admission, "indication", None), getattr(admission, "product", None)
        )
        self.first_t: float | None = None  # first update
        self.last_t: float | None = None
        self.temps: list[list[float]] = []  # [ts, C], time-sorted, newest TEMP_KEEP
        self.temp_max: float | None = None
        self.gate_t: float | None = None  # baselines frozen from here on
        self.fever_t: float | None = None  # first temperature >= FEVER_C seen
        self.base: dict[str, list[float]] = {}  # name -> [mean, seconds learned]
        self.base_t: float | None = None  # last time the baselines were offered a value
        self.prior_grade2 = False  # CRS grade >= 2 earlier in this admission
        self.fast: dict[str, list[float]] = {}  # hr/rr/spo2 -> [smoothed, last ts]

    # -- updating --------------------------------------------------------------------------

    def update(
        self, s: Any, t: float, *, news2: float | None = None, temp_ts: float | None = None
    ) -> dict[str, float]:
        """Fold in snapshot `s` (monitor.clinical.snapshot.Snapshot) as of t and return x(t).
        `news2`: the complete NEWS2 total (None if incomplete); `temp_ts`: the time of the
        temperature reading in `s` (Assessment.vitals["temp_c"].ts)."""
        if self.last_t is not None and t < self.last_t:
            return self.features(s, self.last_t, news2)
        if self.first_t is None:
            self.first_t = t
        if s.temp_c is not None:
            self._temperature(s.temp_c, t if temp_ts is None else min(temp_ts, t), temp_ts)
        if s.temp_c is not None and s.temp_c >= GATE_C or s.fever_masked:
            self.gate_t = t if self.gate_t is None else self.gate_t
        self._smooth(s, t)
        self._baselines(s, t)
        self.last_t = t
        return self.features(s, t, news2)

    def _temperature(self, value: float, ts: float, given_ts: float | None) -> None:
        temps = self.temps
        if temps:
            last_ts, last_value = temps[-1]
            if ts <= last_ts or (given_ts is None and value == last_value):
                return  # the same reading again (or an older one): nothing new
        temps.append([ts, float(value)])
        del temps[:-TEMP_KEEP]
        self.temp_max = value if self.temp_max is None else max(self.temp_max, value)
        if value >= FEVER_C and self.fever_t is None:
            self.fever_t = ts

    def _smooth(self, s: Any, t: float) -> None:
        for name in FAST:
            value = getattr(s, name)
            if value is None:
                continue
            value = _clip(name, value)
            e = self.fast.get(name)
            if e is None or t - e[1] > FAST_RESET_S:
                self.fast[name] = [value, t]
                continue
            e[0] += (1.0 - math.exp(-(t - e[1]) / FAST_TAU_S)) * (value - e[0])
            e[1] = t

    def _value(self, s: Any, name: str) -> float | None:
        """The snapshot's value (smoothed for FAST vitals), None if it has none."""
        value = getattr(s, name)
        if value is None:
            return None
        e = self.fast.get(name)
        return e[0] if e is not None else _clip(name, value)

    def _baselines(self, s: Any, t: float) -> None:
        dt = 0.0 if self.base_t is None else min(t - self.base_t, BASE_MAX_DT_S)
        self.base_t = t
        if self.gate_t is not None:
            return
        for name in ("hr", "sbp", "map"):
            value = self._value(s, name)
            if value is None:
                continue
            b = self.base.get(name)
            if b is None:
                self.base[name] = [value, 0.0]
                continue
            if dt <= 0:
                continue
            mean, learned = b
            if learned >= BASE_MIN_S:
                clip = BASE_CLIP[name]
                value = min(mean + clip, max(mean - clip, value))
            alpha = max(1.0 - math.exp(-dt / BASE_TAU_S), dt / (learned + dt))
            b[0] = mean + alpha * (value - mean)
            b[1] = learned + dt

    def baseline(self, name: str) -> float | None:
        """The learned baseline of hr / sbp / map, None until it has learned BASE_MIN_S."""
        b = self.base.get(name)
        return b[0] if b is not None and b[1] >= BASE_MIN_S else None

    def data_s(self, t: float) -> float:
        """Seconds of data folded in by t."""
        return 0.0 if self.first_t is None else t - self.first_t

    # -- reading ---------------------------------------------------------------------------

    def features(self, s: Any, t: float, news2: float | None = None) -> dict[str, float]:
        """x as of t from the state and snapshot `s` (no update)."""
        x: dict[str, float] = {}
        if self.infusion_ts is not None:
            x["hours_since_infusion"] = _clip(
                "hours_since_infusion", (t - self.infusion_ts) / 3600.0
            )
        if self.age is not None:
            x["age"] = self.age
        if self.autoimmune is not None:
            x["autoimmune"] = self.autoimmune
        x["prior_grade2"] = float(self.prior_grade2)
        if s.temp_c is not None:
            x["temp_c"] = _clip("temp_c", s.temp_c)
            x["febrile"] = float(s.temp_c >= FEVER_C)
        if self.temp_max is not None:
            x["temp_max"] = _clip("temp_c", self.temp_max)
        slope = temp_slope(self.temps, t)
        if slope is not None:
            x["temp_slope"] = slope
        if self.temps or s.fever_masked:
            x["fever_ever"] = float(self.fever_t is not None or s.fever_masked)
        if self.fever_t is not None:
            x["hours_since_fever"] = min(FEVER_HOURS_CAP, max(0.0, (t - self.fever_t) / 3600))
        for name, key in (("hr", "hr_delta"), ("sbp", "sbp_delta"), ("map", "map_delta")):
            value = self._value(s, name)
            if value is None:
                continue
            if name != "map":
                x[name] = value
            base = self.baseline(name)
            if base is not None:
                x[key] = value - base
        hr, spo2, rr = self._value(s, "hr"), self._value(s, "spo2"), self._value(s, "rr")
        if hr is not None and s.sbp is not None and s.sbp > 0:
            x["shock_index"] = _clip("shock_index", hr / s.sbp)
        if spo2 is not None:
            x["spo2"] = spo2
        level = o2_level(s.o2_device, s.o2_flow_lpm)
        if level is not None:
            x["o2_level"] = float(level)
        if s.vasopressors is not None:
            x["pressor"] = float(bool(s.vasopressors))
        if rr is not None:
            x["rr"] = rr
        if news2 is not None:
            x["news2"] = float(news2)
        return x

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatientFeatures:
        f = cls()
        for name in cls.__slots__:
            if name in data:
                setattr(f, name, data[name])
        f.temps = [list(r) for r in f.temps]
        f.base = {k: list(v) for k, v in f.base.items()}
        f.fast = {k: list(v) for k, v in (f.fast or {}).items()}
        return f
