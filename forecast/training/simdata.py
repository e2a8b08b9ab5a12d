"""Simulated beds through the daemon's own grading and the forecast, for train and evaluate.

One bed at a time, no MQTT and no database: the simulator's stream (devices.bed.BedSim,
JSON protocol) is decoded with the daemon's decoders (monitor.ingest.decode_json) into a
monitor.state.bedstate.BedState, assessed as the daemon's Ward does (`assess(now, at)` with
`at = max(now, newest reading)`) every `step_s` of simulated time, and fed to a Forecaster
of its own. Labels come from that graded state (the rule-based grade the daemon shows and
will learn from online), not from the simulator's hidden truth; the truth's first grade
>= 2 is kept too, for reference. Beds are independent, so they run in parallel processes;
bed k is the same patient whatever the number of beds (devices.ward.build_beds).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from devices.ward import WardOptions, build_beds
from forecast.labels import Pending, unpack
from forecast.model import ForecastModel
from forecast.service import Forecaster, grade2
from monitor import config as config_mod
from monitor.ingest.decode_json import decode_admit, decode_care, decode_vitals
from monitor.ingest.messages import Rejected
from monitor.ingest.validate import parse_ts
from monitor.state.bedstate import BedState

START = "2026-01-05T00:00:00Z"  # a fixed simulated start: the same seed, the same data
STEP_S = 300.0  # how often a bed is assessed (the daemon: every message and every 5 s)
LIMITS = {"max_future_s": 300.0, "max_past_s": math.inf}


@dataclass
class BedRun:
    index: int
    cohort: str
    admit_t: float
    end_t: float
    onset_t: float | None = None  # first graded CRS >= 2 (the rule-based alert)
    onsets: list[float] = field(default_factory=list)  # every graded rise from < 2 to >= 2
    truth_onset_t: float | None = None  # first true CRS >= 2 (simulator)
    risks: list[tuple[float, float]] = field(default_factory=list)  # (t, p) per forecast
    # (snapshot t, p at t, label, x if kept, time the label came)
    labelled: list[tuple[float, float | None, int, dict | None, float]] = field(
        default_factory=list
    )


def ward_options(
    seed: int,
    beds: int,
    days: float,
    cohort: str = "mixed",
    fast_interval_s: float = 60.0,
    confounders: float = 0.0,
) -> WardOptions:
    opts = WardOptions(
        beds=beds,
        seed=seed,
        days=days,
        cohort=cohort,
        protocol="json",
        mqtt=False,
        start=parse_ts(START),
        fast_interval_s=fast_interval_s,
        confounders=confounders,  # 0: the shipped model's data, the ward it was trained on
    )
    opts.check()
    return opts


def run_bed(
    opts: WardOptions,
    index: int,
    model: ForecastModel | None = None,
    keep_x: bool = False,
    step_s: float = STEP_S,
) -> BedRun:
    """Bed `index` of the ward `opts` through grading and a frozen forecast (no learning:
    every bed is independent). model None: an untrained one (data only)."""
    sim = build_beds(replace(opts, beds=index + 1), opts.start_ts())[index]
    run = BedRun(index, sim.patient.cohort, sim.start, sim.end)
    clock = [sim.start]  # the time of the observe (or discharge) that labels

    def keep(snap: Pending, y: int) -> None:
        run.labelled.append((snap.t, snap.p, y, unpack(snap.x) if keep_x else None, clock[0]))

    fc = Forecaster(model or ForecastModel(), learn=False, on_label=keep)
    windows = config_mod.from_dict({}).windows()
    state: BedState | None = None
    key, next_t, was2 = f"bed{index}", -math.inf, False
    for out in sim.stream():
        if out.kind == "truth":
            g = out.truth.get("crs_grade")
            if g is not None and g >= 2 and run.truth_onset_t is None:
                run.truth_onset_t = parse_ts(out.truth["ts"])
            continue
        if out.kind != "msg":
            continue
        kind, now = out.topic.rsplit("/", 1)[1], out.deliver_ts
        try:
            if kind == "admit":
                state = BedState(decode_admit(out.payload, now, **LIMITS), windows)
            elif kind == "vitals" and state is not None:
                for obs in decode_vitals(out.payload, now, **LIMITS):
                    state.add_observation(obs)
            elif kind == "care" and state is not None:
                state.add_care(decode_care(out.payload, now, **LIMITS))
            else:
                continue
        except Rejected:
            continue  # the daemon would reject it too
        if state is None or now < next_t:
            continue
        next_t = now + step_s
        at = max(now, state.latest_ts or now)
        a = state.assess(now, at=at)
        clock[0] = at
        risk = fc.observe(key, a.snapshot, a, at)
        if risk is not None:
            run.risks.append((at, risk["p"]))
        is2 = grade2(a.crs)
        if is2 and not was2:
            run.onsets.append(at)
        was2 = is2
    run.onset_t = run.onsets[0] if run.onsets else None
    clock[0] = run.end_t
    fc.discharge(key, run.end_t)
    return run


def _run(args: tuple[Any, ...]) -> BedRun:
    return run_bed(*args)


def run_ward(
    opts: WardOptions,
    model: ForecastModel | None = None,
    keep_x: bool = False,
    jobs: int | None = None,
) -> list[BedRun]:
    """Every bed of `opts`, in bed order, on `jobs` processes (default: every core)."""
    jobs = jobs or os.cpu_count() or 1
    tasks = [(opts, i, model, keep_x) for i in range(opts.beds)]
    if jobs == 1:
        return [_run(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_run, tasks, chunksize=1))
