"""What is not CRS but looks like it at the bedside: drawn per patient, pure and seeded.

| kind | what the patient does |
|---|---|
| pain_or_anxiety | heart rate +20-35, respiration +2-4, for 30-120 min; no fever (0.4 a day) |
| transfusion_reaction | febrile non-haemolytic: fever 38.2-38.8 C, heart rate +20-30, for |
|  | 45-90 min (15 % of patients, once) |
| late_infection | days after CRS (or from day 4 without CRS): fever 38.3-39.4 C for 12-48 h, |
|  | heart rate +15-25, respiration +3 (25 % of patients) |
| copd_scale2 | hypercapnic lung disease: admitted on NEWS2 SpO2 scale 2, room-air SpO2 |
|  | 88-92 %, respiration 17-20, the whole stay (8 % of patients) |

None of them is CRS: the truth keeps the CRS grade of the CRS course alone (a fever of a
transfusion or an infection is not CRS fever; a COPD patient's SpO2 of 89 % on air is
that patient's target, not hypoxaemia). Every episode is written to the truth file, so
the burden figure can tell what the alerts raised during it were about.

`scale` multiplies the rates and shares (0: none). Drawn from a generator of its own, so
the patient, the staff and the artefacts of a seed stay what they were without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

DAY, HOUR = 86400.0, 3600.0
KINDS = ("pain_or_anxiety", "transfusion_reaction", "late_infection", "copd_scale2")
PAIN_PER_DAY = 0.4
P_TRANSFUSION = 0.15
P_INFECTION = 0.25
P_COPD = 0.08
RAMP_S = 600.0  # an episode's rise and fall


@dataclass(frozen=True, slots=True)
class Episode:
    kind: str
    start: float
    end: float
    fever_c: float = 0.0  # temperature rise at full intensity
    hr: float = 0.0
    rr: float = 0.0

    def intensity(self, t: float) -> float:
        if t <= self.start or t >= self.end:
            return 0.0
        ramp = min(RAMP_S, 0.25 * (self.end - self.start))
        x = min(t - self.start, self.end - t)
        return 1.0 if x >= ramp else math.sin(0.5 * math.pi * x / ramp) ** 2


@dataclass(frozen=True, slots=True)
class Confounders:
    copd: bool = False
    episodes: tuple[Episode, ...] = ()

    def at(self, t: float) -> tuple[float, float, float]:
        """(fever C, heart rate, respiration) added at t."""
        fever = hr = rr = 0.0
        for e in self.episodes:
            i = e.intensity(t)
            if i:
                fever, hr, rr = fever + e.fever_c * i, hr + e.hr * i, rr + e.rr * i
        return fever, hr, rr


NONE = Confounders()


def draw(
    rng: np.random.Generator,
    start: float,
    end: float,
    crs_end: float | None,
    baseline_temp: float,
    scale: float = 1.0,
) -> Confounders:
    """The confounders of one stay [start, end); `crs_end`: when the CRS course is over."""
    if scale <= 0:
        return NONE
    eps: list[Episode] = []
    t = start + float(rng.exponential(DAY / (PAIN_PER_DAY * scale)))
    while t < end:
        length = float(rng.uniform(0.5, 2.0)) * HOUR
        eps.append(
            Episode(
                "pain_or_anxiety",
                round(t),
                round(min(t + length, end)),
                hr=float(rng.uniform(20, 35)),
                rr=float(rng.uniform(2, 4)),
            )
        )
        t += length + float(rng.exponential(DAY / (PAIN_PER_DAY * scale)))
    if rng.random() < P_TRANSFUSION * scale:
        t = float(rng.uniform(start + min(2 * HOUR, 0.5 * (end - start)), end))
        peak = float(rng.uniform(38.2, 38.8))
        eps.append(
            Episode(
                "transfusion_reaction",
                round(t),
                round(min(t + rng.uniform(0.75, 1.5) * HOUR, end)),
                fever_c=peak - baseline_temp + 0.3,
                hr=float(rng.uniform(20, 30)),
            )
        )
    if rng.random() < P_INFECTION * scale:
        after = (crs_end + rng.uniform(2, 5) * DAY) if crs_end else start + rng.uniform(4, 9) * DAY
        if after < end:
            peak = float(rng.uniform(38.3, 39.4))
            eps.append(
                Episode(
                    "late_infection",
                    round(after),
                    round(min(after + rng.uniform(12, 48) * HOUR, end)),
                    fever_c=peak - baseline_temp + 0.3,
                    hr=float(rng.uniform(15, 25)),
                    rr=3.0,
                )
            )
    copd = bool(rng.random() < P_COPD * scale)
    return Confounders(copd, tuple(sorted(eps, key=lambda e: e.start)))


def with_copd(patient, rng: np.random.Generator):
    """The patient as a COPD patient on SpO2 scale 2: room-air SpO2 88-92 % (baseline
    89-91), respiration 17-20; a CRS hypoxia of the drawn grade falls below the patient's
    own target (88 %) as a scale-1 patient's falls below 92 %."""
    b, c = patient.baseline, patient.course
    spo2 = float(rng.uniform(89.3, 90.7))
    drop = c.spo2_drop
    if drop > 2.5:  # a CRS hypoxia of grade >= 2: the same depth below the own target
        drop = max(0.0, spo2 - (b.spo2 - c.spo2_drop - 4.0))
    else:
        drop = min(drop, 0.8)
    return replace(
        patient,
        spo2_scale=2,
        baseline=replace(b, spo2=spo2, rr=float(rng.uniform(17, 20))),
        course=replace(c, spo2_drop=float(drop)),
    )


def with_confounders(patient, rng: np.random.Generator, end: float, scale: float = 1.0):
    """The patient with confounders drawn for the stay until `end` (and as a COPD patient
    when drawn)."""
    if scale <= 0:
        return patient
    c = patient.course
    crs_end = max(c.crs.end, c.leak.end) if c.crs is not None and c.leak is not None else None
    conf = draw(rng, patient.admit_ts, end, crs_end, patient.baseline.temp_c, scale)
    patient = replace(patient, confounders=conf)
    return with_copd(patient, rng) if conf.copd else patient
