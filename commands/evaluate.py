"""`python main.py evaluate --seeds 11,12,13 [--patients 40 --days 10 --cohorts ...]`.

For every seed and cohort: simulate a ward of that cohort without MQTT (what `simulate
--no-mqtt --record --truth` does), replay it through the daemon's pipeline with the given
config (`replay --truth --report`), score detection, burden and the forecast against the
truth. Runs (seed, cohort) in parallel processes (`--jobs`, default every core), prints
one line per seed and cohort, then each cohort over all seeds, and writes
`OUT/report.json` (every figure; the recordings and truths stay in OUT for `replay`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from commands.evaluation import report
from commands.replay import run as replay_run
from devices.physiology import COHORTS
from devices.ward import WardOptions, generate
from monitor import config as config_mod
from monitor.ingest.validate import parse_ts

START = "2026-01-05T00:00:00Z"  # a fixed simulated start: the same seed, the same files
DEFAULT_COHORTS = ("lymphoma", "myeloma", "autoimmune")


def add_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--seeds", required=True, help="comma-separated simulator seeds, e.g. 101,102,103")
    a("--patients", type=int, default=40, help="patients per cohort and seed (default 40)")
    a("--days", type=float, default=10.0, help="simulated days (default 10)")
    a(
        "--cohorts",
        default=",".join(DEFAULT_COHORTS),
        help="comma-separated cohorts, each simulated and reported on its own "
        f"(default %(default)s; known: {', '.join(COHORTS)})",
    )
    a(
        "--fast-interval",
        type=float,
        default=60.0,
        metavar="S",
        help="monitor export cadence of HR, SpO2, RR in seconds (default %(default)s)",
    )
    a(
        "--protocol",
        choices=("json", "fhir", "hl7", "mixed"),
        default="json",
        help="what the monitors speak (default %(default)s: the alerts do not depend on it, "
        "decoding FHIR and HL7 costs time)",
    )
    a(
        "--slow-share",
        type=float,
        default=0.25,
        metavar="F",
        help="share of beds whose monitor exports every 5 minutes (default %(default)s)",
    )
    a(
        "--confounders",
        type=float,
        default=1.0,
        metavar="X",
        help="rates of what is not CRS times X (default %(default)s)",
    )
    a(
        "--ack-after",
        type=float,
        default=300.0,
        metavar="S",
        help="a nurse acknowledges every alert that asks someone to act S seconds after it "
        "(default %(default)s; a negative value: nobody answers, and alerts repeat)",
    )
    a("--out", default="data/evaluate", help="folder for recordings, truths and report.json")
    a("--jobs", type=int, default=None, help="processes (default: every core)")


def parse(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: comma-separated integers, not {args.seeds!r}") from None
    cohorts = [c.strip() for c in args.cohorts.split(",") if c.strip()]
    for c in cohorts:
        if c not in COHORTS:
            raise ValueError(f"--cohorts: {c!r} is not one of {', '.join(COHORTS)}")
    if not seeds or not cohorts:
        raise ValueError("--seeds and --cohorts: at least one each")
    if not 1 <= args.patients <= 999:
        raise ValueError(f"--patients: 1 to 999, not {args.patients}")
    return seeds, cohorts


def ward_options(seed: int, cohort: str, args: argparse.Namespace, out: Path) -> WardOptions:
    stem = out / f"{cohort}-{seed}"
    opts = WardOptions(
        beds=args.patients,
        seed=seed,
        days=args.days,
        cohort=cohort,
        ward=cohort,
        protocol=args.protocol,
        mqtt=False,
        start=parse_ts(START),
        fast_interval_s=args.fast_interval,
        slow_share=args.slow_share,
        confounders=args.confounders,
        record=f"{stem}.record.jsonl",
        truth=f"{stem}.truth.jsonl",
    )
    opts.check()
    return opts


def one(job: tuple[WardOptions, config_mod.Config, float | None]) -> dict[str, Any]:
    """Simulate and replay one (seed, cohort): the replay counts and the raw scores."""
    opts, cfg, ack_after = job
    started = time.perf_counter()
    generate(opts)
    simulated = time.perf_counter() - started
    result = replay_run(opts.record, cfg, truth=opts.truth, ack_after=ack_after, split=False)
    return {
        "seed": opts.seed,
        "cohort": opts.cohort,
        "simulate_seconds": round(simulated, 1),
        "replay": result["replay"],
        "raw": result["raw"],
    }


def main_evaluate(args: argparse.Namespace, cfg: config_mod.Config, out=sys.stdout) -> int:
    try:
        seeds, cohorts = parse(args)
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        ack_after = args.ack_after if args.ack_after >= 0 else None
        jobs = [(ward_options(s, c, args, folder), cfg, ack_after) for s in seeds for c in cohorts]
    except (ValueError, OSError) as e:
        print(f"crswatch: evaluate: {e}", file=sys.stderr)
        return 2
    workers = min(len(jobs), args.jobs or os.cpu_count() or 1)
    started = time.perf_counter()
    print(
        f"crswatch: evaluate: {len(jobs)} runs ({len(seeds)} seeds x {len(cohorts)} cohorts, "
        f"{args.patients} patients x {args.days:g} days each) on {workers} processes",
        file=sys.stderr,
    )
    if workers == 1:
        runs = [one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(one, jobs, chunksize=1))
    rows, per_run = [], []
    for r in runs:
        s = report.summarise(r["raw"]["beds"], r["raw"]["forecast"])[r["cohort"]]
        rows.append((f"seed {r['seed']}", r["cohort"], s))
        per_run.append({k: r[k] for k in ("seed", "cohort", "simulate_seconds", "replay")})
        per_run[-1]["summary"] = s
    pooled = {}
    for c in cohorts:
        mine = [r for r in runs if r["cohort"] == c]
        beds = [b for r in mine for b in r["raw"]["beds"]]
        fc = [f for r in mine for f in r["raw"]["forecast"]]
        pooled[c] = report.summarise(beds, fc)[c]
        rows.append(("all seeds", c, pooled[c]))
    text = report.table(rows)
    out.write(text + "\n")
    doc = {
        "command": "python main.py evaluate " + " ".join(sys.argv[2:]),
        "seeds": seeds,
        "cohorts": cohorts,
        "patients": args.patients,
        "days": args.days,
        "fast_interval_s": args.fast_interval,
        "protocol": args.protocol,
        "slow_share": args.slow_share,
        "confounders": args.confounders,
        "ack_after_s": ack_after,
        "config": str(cfg.path) if cfg.path else None,
        "targets": report.TARGETS,
        "cohort_over_seeds": pooled,
        "runs": per_run,
        "table": text,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "report.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(
        f"crswatch: evaluate: {doc['seconds']:.0f} s; every figure in {folder / 'report.json'}",
        file=sys.stderr,
    )
    return 0
