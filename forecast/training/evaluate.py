"""`python -m forecast.training.evaluate --seed 101 --beds N --days D`: the shipped model on
held-out simulated cohorts (seeds other than training's: other patients).

The model is frozen (it does not learn during the evaluation), every bed is graded by the
daemon's own BedState (simdata.py) and every snapshot's prediction, made when it was taken,
is scored against its delayed label. Prints:
- AUROC (exact, by ranks; and river's discretised ROCAUC as the daemon computes it), the
  Brier score (with that of always predicting the base rate), calibration in five bins;
- lead time over the rule-based grade-2 alert, for each first graded CRS >= 2 onset
  (`graded`; `truth`: the simulator's true first grade >= 2, for reference):
  `first`: how long before the onset the risk first reached the threshold within the 12 h
  before it (at most 12 h by definition); `standing`: how long the warning still on at the
  onset had been on (risk >= threshold without a break; 0 when off at the onset; not
  capped); median and IQR over the onsets warned, and the share warned;
- warnings with no onset in the 12 h after them, per patient-day; a warning is a rise to
  the threshold after at least GAP_S below it (a risk hovering at the threshold is one);
- `--online`: the same snapshots replayed in ward time order through a copy of the model
  that learns each label when it comes (as the daemon does), scored by delayed
  progressive validation: does learning from this ward help?
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from forecast.model import ForecastModel
from forecast.quality import Quality
from forecast.training.simdata import BedRun, run_ward, ward_options

HORIZON_S = 12 * 3600.0
THRESHOLDS = (0.5, 0.3)
GAP_S = 3600.0  # forecasts further apart than this: a new run of warnings


def auroc_exact(ps: list[float], ys: list[int]) -> float | None:
    """The Mann-Whitney AUROC (ties count half); None without both classes."""
    pairs = sorted(zip(ps, ys, strict=True))
    pos = sum(ys)
    neg = len(ys) - pos
    if not pos or not neg:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # the average rank (1-based) of the tie block
        rank_sum += mid * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def quantile(values: list[float], q: float) -> float | None:
    """Linear-interpolation quantile of a list (None if empty)."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def lead_time(risks: list[tuple[float, float]], onset: float, threshold: float) -> float | None:
    """Seconds from the first forecast >= threshold in [onset - 12 h, onset) to the onset."""
    for t, p in risks:
        if onset - HORIZON_S <= t < onset and p >= threshold:
            return onset - t
    return None


def standing_lead(risks: list[tuple[float, float]], onset: float, threshold: float) -> float | None:
    """Seconds the warning on at the onset had been on (None: off at the onset)."""
    start, prev_t = None, None
    for t, p in risks:
        if t >= onset:
            break
        if p < threshold or (prev_t is not None and t - prev_t > GAP_S):
            start = None
        if p >= threshold and start is None:
            start = t
        prev_t = t
    if start is None or prev_t is None or onset - prev_t > GAP_S:
        return None
    return onset - start


def warnings(risks: list[tuple[float, float]], threshold: float) -> list[float]:
    """Times the risk rose to the threshold after at least GAP_S below it (or unknown)."""
    out, last_high = [], None
    for t, p in risks:
        if p >= threshold:
            if last_high is None or t - last_high > GAP_S:
                out.append(t)
            last_high = t
    return out


def summarise(runs: list[BedRun]) -> dict[str, Any]:
    q = Quality()
    ps, ys = [], []
    by_cohort: dict[str, tuple[list[float], list[int]]] = {}
    for r in runs:
        for _, p, y, _, _ in r.labelled:
            if p is None:
                continue
            q.update(y, p)
            ps.append(p)
            ys.append(y)
            cp, cy = by_cohort.setdefault(r.cohort, ([], []))
            cp.append(p)
            cy.append(y)
    base = sum(ys) / len(ys) if ys else 0.0
    days = sum(r.end_t - r.admit_t for r in runs) / 86400
    out: dict[str, Any] = {
        "beds": len(runs),
        "patient_days": round(days, 1),
        "snapshots": len(ys),
        "positives": sum(ys),
        "auroc": auroc_exact(ps, ys),
        "auroc_river": q.auroc,
        "auroc_by_cohort": {c: auroc_exact(*v) for c, v in sorted(by_cohort.items())},
        "brier": q.brier,
        "brier_base_rate": sum((base - y) ** 2 for y in ys) / len(ys) if ys else None,
        "calibration": q.calibration(),
        "lead": {},
    }
    for label, attr in (("graded", "onset_t"), ("truth", "truth_onset_t")):
        onsets = [(r, getattr(r, attr)) for r in runs if getattr(r, attr) is not None]
        for thr in THRESHOLDS:
            for kind, lead in (("first", lead_time), ("standing", standing_lead)):
                leads = [lt / 3600 for r, o in onsets if (lt := lead(r.risks, o, thr)) is not None]
                out["lead"][f"{label} {kind}@{thr}"] = {
                    "onsets": len(onsets),
                    "warned": len(leads),
                    "share_warned": len(leads) / len(onsets) if onsets else None,
                    "median_h": quantile(leads, 0.5),
                    "q1_h": quantile(leads, 0.25),
                    "q3_h": quantile(leads, 0.75),
                }
    for thr in THRESHOLDS:
        false = sum(
            1
            for r in runs
            for w in warnings(r.risks, thr)
            if not any(w < o <= w + HORIZON_S for o in r.onsets)
        )
        out[f"false_warnings_per_patient_day@{thr}"] = false / days if days else None
    return out


def online(runs: list[BedRun], model: ForecastModel) -> dict[str, Any]:
    """Predict each snapshot at its time, learn it when its label came (all beds, in ward
    time order); score each prediction when its label comes."""
    events = []
    for r in runs:
        for t, _, y, x, label_t in r.labelled:
            i = len(events)
            events += [(t, 1, i, x, y), (label_t, 0, i, x, y)]  # learn first on a tie
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    q, said = Quality(), {}
    for _, kind, i, x, y in events:
        if kind == 1:
            said[i] = model.predict_proba_one(x)
        else:
            q.update(y, said.pop(i))
            model.learn_one(x, y)
    return q.report()


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def report(s: dict[str, Any]) -> str:
    lines = [
        f"{s['beds']} beds, {s['patient_days']} patient-days, {s['snapshots']} snapshots "
        f"({s['positives']} positive)",
        f"AUROC {_f(s['auroc'])} (river ROCAUC {_f(s['auroc_river'])}); by cohort: "
        + ", ".join(f"{c} {_f(v)}" for c, v in s["auroc_by_cohort"].items()),
        f"Brier {_f(s['brier'], '.4f')} (base rate alone {_f(s['brier_base_rate'], '.4f')})",
        "calibration (bin: n, mean predicted, observed):",
    ]
    for b in s["calibration"]:
        lines.append(
            f"  {b['bin']:<9} n={b['n']:<6} predicted {_f(b['predicted'])}  "
            f"observed {_f(b['observed'])}"
        )
    lines.append(
        "lead time over the grade-2 onset (first: in the 12 h before it; standing: "
        "the warning on at the onset):"
    )
    for key, v in s["lead"].items():
        lines.append(
            f"  {key:<20} {v['warned']}/{v['onsets']} warned "
            f"({_f(v['share_warned'], '.0%')}); median {_f(v['median_h'], '.1f')} h, "
            f"IQR {_f(v['q1_h'], '.1f')}-{_f(v['q3_h'], '.1f')} h"
        )
    for thr in THRESHOLDS:
        lines.append(
            f"warnings at {thr} with no onset in the 12 h after: "
            f"{_f(s[f'false_warnings_per_patient_day@{thr}'])} per patient-day"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m forecast.training.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--beds", type=int, default=80)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--cohort", choices=("autoimmune", "lymphoma", "mixed"), default="mixed")
    p.add_argument("--fast-interval", type=float, default=60.0)
    p.add_argument("--model", default="forecast/model.pkl")
    p.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    p.add_argument(
        "--online",
        action="store_true",
        help="also replay the snapshots through a model that learns as it goes",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    try:
        opts = ward_options(args.seed, args.beds, args.days, args.cohort, args.fast_interval)
        model = ForecastModel.load(args.model)
    except (ValueError, OSError) as e:
        p.error(str(e))
    started = time.monotonic()
    runs = run_ward(opts, model, keep_x=args.online, jobs=args.jobs)
    summary = summarise(runs)
    summary["model"] = model.version
    if args.online:
        summary["online"] = online(runs, ForecastModel.from_bytes(model.to_bytes()))
    text = f"model {model.version}, seed {args.seed}, {args.cohort}\n{report(summary)}"
    if args.online:
        o = summary["online"]
        text += (
            f"\nonline (learning from this ward as labels come): AUROC {_f(o['auroc'])} "
            f"(river ROCAUC), Brier {_f(o['brier'], '.4f')}; calibration: "
            + ", ".join(
                f"{b['bin']} {_f(b['predicted'])}/{_f(b['observed'])}" for b in o["calibration"]
            )
        )
    print(json.dumps(summary, indent=2) if args.json else text)
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
