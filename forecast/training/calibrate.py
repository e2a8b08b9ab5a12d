"""`python -m forecast.training.calibrate --seeds 1,2,3 --model forecast/model.pkl`: fit the
per-cohort calibration (forecast/calibration.py) of a trained model, and save it inside.

For each seed and each cohort (lymphoma, myeloma, autoimmune), a simulated ward of that
cohort (the simulator's defaults, confounders included: the ward the risk is shown on) is
graded by the daemon's own BedState and the model, frozen, predicts at every snapshot
(simdata.py); the delayed labels are the forecast's own (confirmed graded CRS grade >= 2
within 12 h, forecast/policy.py). Each cohort's Platt parameters are fitted on its
(model p, label) pairs; "unknown" on all of them pooled. The model's weights are untouched.
The same arguments give the same file. Tuning seeds only (1, 2, 3): never a held-out seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from forecast.calibration import GROUPS
from forecast.model import ForecastModel
from forecast.training.simdata import run_ward, ward_options

COHORTS = ("lymphoma", "myeloma", "autoimmune")
DEFAULTS = {"seeds": "1,2,3", "beds": 20, "days": 6.0, "confounders": 1.0}


def pairs_of(
    model: ForecastModel,
    seeds: list[int],
    beds: int,
    days: float,
    confounders: float,
    jobs: int | None,
) -> dict[str, list[tuple[float, int]]]:
    """cohort -> (the model's own p, label) of every labelled snapshot."""
    out: dict[str, list[tuple[float, int]]] = {c: [] for c in COHORTS}
    for seed in seeds:
        for c in COHORTS:
            opts = ward_options(seed, beds, days, c, confounders=confounders)
            for r in run_ward(opts, model, keep_x=True, jobs=jobs):
                for _, _, y, x, _ in r.labelled:
                    assert x is not None
                    out[c].append((model.predict_proba_one(x), y))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m forecast.training.calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seeds", default=DEFAULTS["seeds"], help="simulator seeds (tuning only)")
    p.add_argument("--beds", type=int, default=DEFAULTS["beds"], help="beds per cohort and seed")
    p.add_argument("--days", type=float, default=DEFAULTS["days"])
    p.add_argument("--confounders", type=float, default=DEFAULTS["confounders"])
    p.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--model", default="forecast/model.pkl", help="the trained model")
    p.add_argument("--out", default=None, help="where to save (default: --model)")
    p.add_argument("--pairs", default=None, help="also write the (p, label) pairs here (JSON)")
    args = p.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error("--seeds: comma-separated integers")
    started = time.monotonic()
    model = ForecastModel.load(args.model)
    data = pairs_of(model, seeds, args.beds, args.days, args.confounders, args.jobs)
    if args.pairs:
        with open(args.pairs, "w") as fh:
            json.dump(data, fh)
    cal = model.calibration
    cal.params, cal.n = {}, {}
    for c in COHORTS:
        cal.fit(c, data[c])
    cal.fit("unknown", [x for c in COHORTS for x in data[c]])
    model.save(args.out or args.model)
    print(
        f"calibrated {model.version} on seeds {seeds}, {args.beds} beds x {args.days:g} days "
        f"per cohort; {time.monotonic() - started:.0f} s -> {args.out or args.model}",
        file=sys.stderr,
    )
    for g in GROUPS:
        a, b = cal.params[g]
        pos = sum(y for c in COHORTS if g in (c, "unknown") for _, y in data[c])
        print(f"  {g:<11} a={a:.3f} b={b:+.3f} n={cal.n[g]} positives={pos}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
