"""Physiology of one simulated CAR-T patient: pure, seeded, clock-free.

`draw_patient(rng, ...)` draws a patient (baseline, daily rhythm, CRS and ICANS course) from
the published distributions of the cohort (CLINICAL.md "Time course"); `state_at(p, t, tx)`
gives the noise-free vitals at sim time t under the treatment given so far (staff.py owns
`Treatment`). Measurement noise and artefacts are added by the bed (bed.py, artefacts.py).

Sources and decisions:
- autoimmune (Mueller et al., NEJM 2024): CRS 11/15 (10 grade 1, 1 grade 2, none >= 3),
  ICANS 1/15 (grade 1). Onset median ~1.5 days after infusion, short (median ~2 days).
- lymphoma (ZUMA-1 axi-cel: CRS 93 %, grade >= 3 13 %; JULIET tisa-cel: CRS 58 %): onset
  median 2.5 days after infusion (range 1-12), median duration 7 days, no new CRS after
  day 12 here. ICANS after CRS onset in about half (axi-cel) or a third (tisa-cel) of CRS,
  grade 3-4 in a fifth of those.
- The drawn onset is the first fever (T >= 38.0), which rises within 1-4 h. Capillary leak
  (hypotension, hypoxia) and cytokine tachycardia follow 1-8 h later over 4-36 h, except in
  about 20 %, where they lead the fever by 2-8 h ("fever first in about 80 %"). Fever raises
  HR 9 bpm per degree C.
- The worst CRS grade a patient reaches is drawn first; capillary leak then lowers systolic
  pressure and room-air SpO2 so that, untreated, the patient needs exactly the support of
  that grade (hypotension in ~40 % and hypoxia in ~20-25 % of lymphoma CRS).
- Treatment effects: tocilizumab removes 85-97 % of the fever within ~4 h (40-70 % in a
  refractory 15 %); tocilizumab and dexamethasone each cut the leak by 15 % and make the
  rest of the episode run 2x (both: 3x) faster, so treated CRS resolves sooner; steroids
  halve the fever and soften and shorten ICANS; paracetamol lowers temperature by ~0.9 C for
  4-6 h; a fluid bolus adds ~8 mmHg (half-life 4 h, at most 12 in all), so a systolic that
  falls below 80 untreated needs a vasopressor (grade 3); norepinephrine adds 200 mmHg per
  ug/kg/min.
- Circadian rhythm on UTC time of day (peak late afternoon, trough early morning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from monitor.clinical.thresholds import FEVER_C

from .confounders import NONE as NO_CONFOUNDERS
from .confounders import Confounders

DAY, HOUR = 86400.0, 3600.0
COHORTS = ("autoimmune", "lymphoma", "myeloma")
MIXED_COHORTS = ("autoimmune", "lymphoma")  # --cohort mixed (kept: the same seed, the same ward)
# (product, P(CRS), P(grade 1..4 | CRS), P(ICANS | CRS), P(ICANS grade 1..4 | ICANS))
PRODUCTS = {
    "axicabtagene ciloleucel": (0.93, (0.45, 0.41, 0.11, 0.03), 0.55, (0.45, 0.35, 0.15, 0.05)),
    "tisagenlecleucel": (0.58, (0.50, 0.28, 0.17, 0.05), 0.30, (0.45, 0.35, 0.15, 0.05)),
    "CD19 CAR-T (academic)": (11 / 15, (10 / 11, 1 / 11, 0, 0), 1 / 11, (1, 0, 0, 0)),
    # BCMA CAR-T in myeloma: KarMMa ide-cel CRS 84 %, grade >= 3 5 %, ICANS 18 %;
    # CARTITUDE-1 cilta-cel CRS 95 %, grade >= 3 4 %, ICANS 21 % (mostly grade 1-2)
    "idecabtagene vicleucel": (0.84, (0.62, 0.32, 0.05, 0.01), 0.21, (0.55, 0.30, 0.15, 0.0)),
    "ciltacabtagene autoleucel": (0.80, (0.55, 0.40, 0.04, 0.01), 0.22, (0.5, 0.3, 0.15, 0.05)),
}
INDICATIONS = {
    "autoimmune": (
        ("systemic lupus erythematosus", 8),
        ("idiopathic inflammatory myositis", 3),
        ("systemic sclerosis", 4),
    ),
    "myeloma": (("relapsed/refractory multiple myeloma", 1),),
    "lymphoma": (
        ("diffuse large B-cell lymphoma", 75),
        ("high-grade B-cell lymphoma", 15),
        ("transformed follicular lymphoma", 10),
    ),
}
# Untreated trough reached at full intensity, per level of need (ASTCT grade 2/3/4).
# Inside each band of need_levels() (bp: < 90, < 80, < 65; SpO2: < 92, < 86, < 76), the
# systolic one at the daily low of the patient's pressure.
BP_TROUGH = {2: (81, 88), 3: (66, 77), 4: (46, 62)}  # systolic, mmHg
SPO2_TROUGH = {2: (86.5, 91), 3: (77, 85), 4: (60, 74)}  # room-air SpO2, %


@dataclass(frozen=True, slots=True)
class Episode:
    """Intensity 0..1: rises (sin^2) from `onset`, holds, falls (cos^2)."""

    onset: float
    rise_s: float
    plateau_s: float
    fall_s: float

    def shape(self, t: float, speedups: tuple[tuple[float, float], ...] = ()) -> float:
        """`speedups`: (from ts, factor) in time order; after the rise, the episode runs
        `factor` times faster from then on (treatment hastens resolution)."""
        x = self._elapsed(t, speedups) if speedups else t - self.onset
        if x <= 0:
            return 0.0
        if x < self.rise_s:
            return math.sin(0.5 * math.pi * x / self.rise_s) ** 2
        x -= self.rise_s + self.plateau_s
        if x <= 0:
            return 1.0
        if x < self.fall_s:
            return math.cos(0.5 * math.pi * x / self.fall_s) ** 2
        return 0.0

    @property
    def end(self) -> float:
        """When the untreated episode is over."""
        return self.onset + self.rise_s + self.plateau_s + self.fall_s

    def _elapsed(self, t: float, speedups: tuple[tuple[float, float], ...]) -> float:
        x = t - self.onset
        if x <= self.rise_s:
            return x
        eff, at, factor = self.rise_s, self.onset + self.rise_s, 1.0
        for since, f in speedups:
            if since >= t:
                break
            if since > at:
                eff, at = eff + (since - at) * factor, since
            factor = f
        return eff + (t - at) * factor


@dataclass(frozen=True, slots=True)
class Baseline:
    hr: float
    rr: float
    spo2: float
    sbp: float
    dbp: float
    temp_c: float
    hr_amp: float
    sbp_amp: float
    temp_amp: float
    peak_hour: float  # UTC hour of the daily maximum


@dataclass(frozen=True, slots=True)
class Course:
    crs_grade: int  # worst CRS grade drawn (0: no CRS)
    fever_onset: float | None  # first fever, sim ts
    crs: Episode | None  # the fever
    leak: Episode | None  # capillary leak and tachycardia
    fever_c: float  # temperature rise at full intensity, C
    bp_drop: float  # untreated systolic fall at full intensity, mmHg
    spo2_drop: float  # room-air SpO2 fall at full intensity, % points
    toci_response: float  # share of the fever tocilizumab removes
    icans_grade: int
    icans: Episode | None
    ice_min: int  # ICE score at the worst of ICANS


@dataclass(frozen=True, slots=True)
class Patient:
    patient_id: str
    cohort: str
    age: int
    product: str
    indication: str
    infusion_ts: float
    admit_ts: float
    baseline: Baseline
    course: Course
    spo2_scale: int = 1  # NEWS2 SpO2 scale (2: hypercapnic, target 88-92 %)
    confounders: Confounders = NO_CONFOUNDERS  # what is not CRS (confounders.py)


@dataclass(slots=True)
class Treatment:
    """Everything given so far (times are sim ts); staff.py appends, state_at reads."""

    toci: list[float] = field(default_factory=list)
    dex: list[float] = field(default_factory=list)
    paracetamol: list[float] = field(default_factory=list)
    fluids: list[float] = field(default_factory=list)
    pressors: dict[str, float] = field(default_factory=dict)  # drug -> dose running
    o2_device: str = "room_air"
    o2_support: float = 0.0  # share of the oxygenation deficit the device makes up


@dataclass(frozen=True, slots=True)
class State:
    """Noise-free vitals at one time, and what the patient would need untreated."""

    temp_c: float
    hr: float
    rr: float
    spo2: float
    sbp: float
    dbp: float
    map: float
    ice: int
    acvpu: str
    sbp_untreated: float  # without fluids or vasopressors
    spo2_room_air: float
    leak: float  # 0..1
    temp_crs: float = 0.0  # the temperature without the confounders' fever (CRS fever)


# -- drawing a patient ---------------------------------------------------------------------


def _pick(rng: np.random.Generator, weights) -> int:
    w = np.asarray(weights, dtype=float)
    return int(rng.choice(len(w), p=w / w.sum()))


def _lognormal_days(
    rng: np.random.Generator, median: float, sigma: float, low: float, high: float
) -> float:
    return float(np.clip(median * math.exp(sigma * rng.standard_normal()), low, high)) * DAY


def draw_baseline(rng: np.random.Generator, age: int) -> Baseline:
    sbp = float(np.clip(112 + 0.35 * (age - 40) + rng.normal(0, 9), 102, 165))
    return Baseline(
        hr=float(np.clip(80 - 0.15 * (age - 50) + rng.normal(0, 8), 55, 100)),
        rr=float(np.clip(rng.normal(15, 1.5), 12, 19)),
        spo2=float(np.clip(98.6 - 0.04 * (age - 30) + rng.normal(0, 0.7), 94.5, 99.5)),
        sbp=sbp,
        dbp=float(np.clip(0.55 * sbp + rng.normal(10, 5), 55, 95)),
        temp_c=float(np.clip(rng.normal(36.7, 0.2), 36.2, 37.2)),
        hr_amp=float(rng.uniform(3, 7)),
        sbp_amp=float(rng.uniform(3, 7)),
        temp_amp=float(rng.uniform(0.2, 0.4)),
        peak_hour=float(rng.uniform(16, 19)),
    )


def draw_patient(
    rng: np.random.Generator, cohort: str, patient_id: str, admit_ts: float, demo: bool = False
) -> Patient:
    """One patient of `cohort`, admitted at `admit_ts`, infused 0-24 h before. `demo`: CRS
    starts within the first day after admission (median ~5 h), for a lively demo."""
    if cohort not in COHORTS:
        raise ValueError(f"unknown cohort {cohort!r} (expected one of {', '.join(COHORTS)})")
    if cohort == "autoimmune":
        age, product = int(np.clip(rng.normal(38, 11), 18, 65)), "CD19 CAR-T (academic)"
    elif cohort == "myeloma":
        age = int(np.clip(rng.normal(62, 9), 35, 85))
        product = "idecabtagene vicleucel" if rng.random() < 0.5 else "ciltacabtagene autoleucel"
    else:
        age = int(np.clip(rng.normal(60, 11), 22, 85))
        product = "axicabtagene ciloleucel" if rng.random() < 0.5 else "tisagenlecleucel"
    names = INDICATIONS[cohort]
    indication = names[_pick(rng, [n for _, n in names])][0]
    infusion_ts = float(admit_ts - round(rng.uniform(0, DAY)))
    baseline = draw_baseline(rng, age)
    course = draw_course(rng, cohort, product, baseline, infusion_ts, admit_ts, demo)
    return Patient(
        patient_id, cohort, age, product, indication, infusion_ts, float(admit_ts), baseline, course
    )


def draw_course(
    rng: np.random.Generator,
    cohort: str,
    product: str,
    b: Baseline,
    infusion_ts: float,
    admit_ts: float,
    demo: bool,
) -> Course:
    p_crs, crs_grades, p_icans, icans_grades = PRODUCTS[product]
    if rng.random() >= p_crs:
        return Course(0, None, None, None, 0.0, 0.0, 0.0, 0.0, 0, None, 10)
    grade = 1 + _pick(rng, crs_grades)
    lymphoma = cohort == "lymphoma"
    if demo:
        onset = admit_ts + _lognormal_days(rng, 5 / 24, 0.8, 0.5 / 24, 30 / 24)
    elif lymphoma:
        onset = infusion_ts + _lognormal_days(rng, 2.5, 0.55, 1.0, 12.0)
    elif cohort == "myeloma":  # ide-cel median day 1, cilta-cel day 7: later than lymphoma
        onset = infusion_ts + _lognormal_days(rng, 3.5, 0.6, 1.0, 12.0)
    else:
        onset = infusion_ts + _lognormal_days(rng, 1.5, 0.5, 0.5, 6.0)
    onset = max(onset, admit_ts + rng.uniform(0.5, 2) * HOUR)
    duration = (
        _lognormal_days(rng, 7.0, 0.45, 2.0, 21.0)
        if lymphoma
        else _lognormal_days(rng, 4.0, 0.45, 1.0, 12.0)
        if cohort == "myeloma"
        else _lognormal_days(rng, 2.0, 0.5, 0.5, 6.0)
    )
    peak_temp = rng.uniform(38.4, 39.3) if grade == 1 else rng.uniform(38.8, 40.2)
    fever_c = float(peak_temp - b.temp_c)
    # What capillary leak does at full intensity: exactly the need of the drawn grade.
    bp_level = o2_level = 0
    if grade >= 2:
        hypotension, hypoxia = rng.random() < 0.65, rng.random() < 0.38
        if not (hypotension or hypoxia):
            hypotension = rng.random() < 0.6
            hypoxia = not hypotension
        setter = "bp" if hypotension and (not hypoxia or rng.random() < 0.5) else "o2"
        bp_level = (
            grade if setter == "bp" else (int(rng.integers(2, grade + 1)) if hypotension else 0)
        )
        o2_level = grade if setter == "o2" else (int(rng.integers(2, grade + 1)) if hypoxia else 0)
    floor_sbp = b.sbp - b.sbp_amp - 93  # room for a harmless fall, staying >= 93
    bp_drop = (
        b.sbp - b.sbp_amp - rng.uniform(*BP_TROUGH[bp_level])
        if bp_level
        else float(min(rng.uniform(0, 10), max(floor_sbp, 0)))
    )
    spo2_drop = (
        b.spo2 - rng.uniform(*SPO2_TROUGH[o2_level])
        if o2_level
        else float(min(rng.uniform(0, 2), b.spo2 - 93.5))
    )
    # The fever episode: rises within hours, crossing 38.0 C at the drawn onset.
    f_rise = rng.uniform(1, 4) * HOUR
    f_plateau = rng.uniform(0.2, 0.5) * duration
    share = min(1.0, max(0.0, (FEVER_C + 0.05 - b.temp_c) / fever_c))
    to_fever = f_rise * math.asin(math.sqrt(share)) / (0.5 * math.pi)
    crs = Episode(onset - to_fever, f_rise, f_plateau, max(duration - f_rise - f_plateau, HOUR))
    # Capillary leak (and tachycardia): after the fever in ~80 %, ahead of it otherwise.
    lead = rng.uniform(1, 8) if rng.random() < 0.8 else -rng.uniform(2, 8)
    l_total = rng.uniform(0.5, 0.8) * duration
    l_rise = min((rng.uniform(4, 12) if grade == 1 else rng.uniform(12, 36)) * HOUR, 0.5 * l_total)
    l_plateau = rng.uniform(0.1, 0.25) * l_total
    leak = Episode(onset + lead * HOUR, l_rise, l_plateau, l_total - l_rise - l_plateau)
    toci_response = float(rng.uniform(0.85, 0.97) if rng.random() < 0.85 else rng.uniform(0.4, 0.7))
    icans_grade, icans, ice_min = 0, None, 10
    if rng.random() < p_icans:
        icans_grade = 1 + _pick(rng, icans_grades)
        ice_min = {
            1: int(rng.integers(7, 10)),
            2: int(rng.integers(3, 7)),
            3: int(rng.integers(0, 3)),
            4: 0,
        }[icans_grade]
        start = onset + _lognormal_days(rng, 1.5 if lymphoma else 1.0, 0.5, 0.25, 6.0)
        if demo:
            start = onset + rng.uniform(2, 12) * HOUR
        length = _lognormal_days(rng, 3.0 if lymphoma else 1.0, 0.5, 0.5, 14.0)
        i_rise = min(rng.uniform(6, 24) * HOUR, 0.4 * length)
        i_plateau = min(rng.uniform(0.1, 0.3) * length, 0.3 * length)
        icans = Episode(start, i_rise, i_plateau, length - i_rise - i_plateau)
    return Course(
        grade,
        float(onset),
        crs,
        leak,
        fever_c,
        float(bp_drop),
        float(spo2_drop),
        toci_response,
        icans_grade,
        icans,
        ice_min,
    )


# -- the state at a time -------------------------------------------------------------------


def _since(doses: list[float], t: float) -> float | None:
    """Seconds since the first dose given at or before t (None: none yet)."""
    return (t - doses[0]) if doses and doses[0] <= t else None


def _fade(seconds: float | None, tau_s: float) -> float:
    """0 before a dose, rising to 1 with time constant tau_s after it."""
    return 0.0 if seconds is None else 1.0 - math.exp(-seconds / tau_s)


def _paracetamol(doses: list[float], t: float) -> float:
    """Antipyretic effect, degrees C: ramps up over 1 h, holds to 4 h, gone by 6 h."""
    total = 0.0
    for d in reversed(doses):
        x = (t - d) / HOUR
        if x >= 6:
            break
        if x > 0:
            total += 0.9 * (min(1.0, x) if x < 4 else (6 - x) / 2)
    return min(total, 1.2)


def circadian(b: Baseline, t: float) -> float:
    hour = (t % DAY) / HOUR
    return math.cos(2 * math.pi * (hour - b.peak_hour) / 24)


def state_at(p: Patient, t: float, tx: Treatment) -> State:
    b, c = p.baseline, p.course
    circ = circadian(b, t)
    dex = _fade(_since(tx.dex, t), 8 * HOUR)
    toci = _fade(_since(tx.toci, t), 1.5 * HOUR)
    toci_slow = _fade(_since(tx.toci, t), 8 * HOUR)
    firsts = sorted(d[0] for d in (tx.toci, tx.dex) if d)
    speedups = tuple((ts, 2.0 + i) for i, ts in enumerate(firsts))
    fever_i = leak = 0.0
    if c.crs is not None:
        fever_i = c.crs.shape(t, speedups) * (1 - 0.5 * dex)
        leak = c.leak.shape(t, speedups) * (1 - 0.15 * dex) * (1 - 0.15 * toci_slow)
    intensity = max(fever_i, leak)
    fever = c.fever_c * fever_i * (1 - c.toci_response * toci)
    fever = max(0.0, fever - _paracetamol(tx.paracetamol, t))
    temp_crs = b.temp_c + b.temp_amp * circ + fever
    other_fever, other_hr, other_rr = p.confounders.at(t) if p.confounders.episodes else (0, 0, 0)
    temp = temp_crs + other_fever
    sbp_normal = b.sbp + b.sbp_amp * circ
    sbp_untreated = sbp_normal - c.bp_drop * leak
    fluids = min(
        12.0,
        sum(8.0 * math.exp(-(t - f) / (4 * HOUR) * math.log(2)) for f in tx.fluids[-4:] if f <= t),
    )
    pr = tx.pressors
    pressor = min(
        70.0,
        200 * pr.get("norepinephrine", 0.0)
        + 150 * pr.get("epinephrine", 0.0)
        + (10.0 if pr.get("vasopressin", 0.0) > 0 else 0.0),
    )
    sbp = min(sbp_untreated + fluids + pressor, sbp_normal + 20)
    dbp = b.dbp + 0.55 * (sbp - b.sbp)
    spo2_room = b.spo2 - c.spo2_drop * leak
    spo2 = min(100.0, b.spo2 - c.spo2_drop * leak * (1 - tx.o2_support))
    hr = (
        b.hr
        + b.hr_amp * circ
        + 9 * fever
        + 0.35 * max(0.0, sbp_normal - sbp)
        + 6 * intensity
        + 60 * pr.get("epinephrine", 0.0)
        + 9 * other_fever
        + other_hr
    )
    target = 95 if p.spo2_scale == 1 else 91  # breathing harder below the own range
    rr = b.rr + 1.5 * (fever + other_fever) + 0.4 * max(0.0, target - spo2) + 2 * leak + other_rr
    ice, acvpu = neuro_at(p, t, tx)
    return State(
        temp_c=temp,
        hr=min(hr, 175.0),
        rr=min(rr, 45.0),
        spo2=spo2,
        sbp=sbp,
        dbp=dbp,
        map=(sbp + 2 * dbp) / 3,
        ice=ice,
        acvpu=acvpu,
        sbp_untreated=sbp_untreated,
        spo2_room_air=spo2_room,
        leak=leak,
        temp_crs=temp_crs,
    )


def neuro_at(p: Patient, t: float, tx: Treatment) -> tuple[int, str]:
    """True ICE score and ACVPU; dexamethasone softens ICANS and hastens its end."""
    c = p.course
    if c.icans is None:
        return 10, "A"
    first = _since(tx.dex, t)
    speedup = ((t - first, 2.0),) if first is not None else ()
    j = c.icans.shape(t, speedup) * (1 - 0.3 * _fade(first, 8 * HOUR))
    ice = int(round(10 - (10 - c.ice_min) * j))
    g = c.icans_grade
    if g >= 4 and j > 0.85:
        return ice, "U"
    if g >= 3 and j > 0.7:
        return ice, "P"
    if g >= 2 and j > 0.6:
        return ice, "V"
    return ice, ("C" if ice <= 8 else "A")
