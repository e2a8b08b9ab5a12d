"""`python -m forecast.training.train --seed 1 --out forecast/model.pkl`: the cold-start model.

Simulates a ward (devices' generator, called in-process, no MQTT), grades every bed with
the daemon's own BedState, takes the forecast's snapshots with their delayed labels (from
the graded state: see simdata.py), and fits the shared model on them: `--epochs` passes
over the snapshots in a seeded shuffled order, one learn_one each. The same arguments give
the same file. The saved model then learns at model.ONLINE_LEARNING_RATE: from then on the
daemon's Forecaster keeps learning online, slowly.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from forecast.model import ONLINE_LEARNING_RATE, ForecastModel
from forecast.training.simdata import run_ward, ward_options

DEFAULTS = {
    "seed": 1,
    "beds": 250,
    "days": 6.0,
    "cohort": "mixed",
    "fast_interval": 60.0,
    "epochs": 1,
}


def version_of(args: argparse.Namespace) -> str:
    return f"lr1-sim{args.seed}-{args.cohort}-{args.beds}b{args.days:g}d-e{args.epochs}"


def fit(
    data: list[tuple[dict[str, float], int]], seed: int, epochs: int, version: str
) -> ForecastModel:
    """A new model learnt from (x, y) pairs: `epochs` seeded shuffled passes."""
    model = ForecastModel(version)
    order = list(range(len(data)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            x, y = data[i]
            model.learn_one(x, y)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m forecast.training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--beds", type=int, default=DEFAULTS["beds"])
    p.add_argument("--days", type=float, default=DEFAULTS["days"])
    p.add_argument(
        "--cohort", choices=("autoimmune", "lymphoma", "mixed"), default=DEFAULTS["cohort"]
    )
    p.add_argument(
        "--fast-interval",
        type=float,
        default=DEFAULTS["fast_interval"],
        help="simulated HR/SpO2/RR every S seconds (default %(default)s)",
    )
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--out", default="forecast/model.pkl")
    args = p.parse_args(argv)
    try:
        opts = ward_options(args.seed, args.beds, args.days, args.cohort, args.fast_interval)
    except ValueError as e:
        p.error(str(e))
    started = time.monotonic()
    runs = run_ward(opts, keep_x=True, jobs=args.jobs)
    data = [(x, y) for r in runs for _, _, y, x, _ in r.labelled]
    model = fit(data, args.seed, args.epochs, version_of(args))
    model.set_learning_rate(ONLINE_LEARNING_RATE)
    model.save(args.out)
    positives = sum(y for _, y in data)
    onsets = sum(r.onset_t is not None for r in runs)
    cohorts = {c: sum(r.cohort == c for r in runs) for c in ("autoimmune", "lymphoma")}
    print(
        f"trained {model.version}: {len(data)} snapshots ({positives} positive) from "
        f"{len(runs)} beds ({cohorts}), {onsets} graded CRS >= 2 onsets; "
        f"{time.monotonic() - started:.0f} s -> {args.out}",
        file=sys.stderr,
    )
    w = model.linear.weights
    for name in sorted(w, key=lambda k: -abs(w[k])):
        print(f"  {name:<22} {w[name]:+.3f}")
    print(f"  {'(intercept)':<22} {model.linear.intercept:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
