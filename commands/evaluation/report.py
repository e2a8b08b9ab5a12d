"""Raw scores (scoring.py, forecast_score.py beside this) -> the report and the table.

`summarise(beds, forecasts)` pools the raw records of any number of beds (one replay, or
several seeds) per cohort (and "all"); `table(rows)` prints one line per (label, cohort).
Targets are issue 18's.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import Any

from commands.evaluation.forecast_score import THRESHOLDS, auprc
from forecast.quality import CAL_EDGES
from forecast.training.evaluate import auroc_exact, quantile

TARGETS = {
    "detection_grade2": 0.95,
    "detection_grade3": 1.0,
    "false_tier2_per_patient_day": 0.2,
    "act_alerts_per_patient_day": 1.0,
    "auroc": 0.90,
    "lead_h": 4.0,
    "risk_alerts_per_case": 5.0,
}
SENSITIVITY = 0.8


def _share(n: int, d: int) -> float | None:
    return round(n / d, 3) if d else None


def _rate(n: float, days: float) -> float | None:
    return round(n / days, 3) if days else None


def detection(onsets: list[dict], label: str) -> dict[str, Any]:
    unobservable = sum(1 for o in onsets if not o.get("observable", True))
    onsets = [o for o in onsets if o.get("observable", True)]
    delays = [o["delay_s"] for o in onsets if o["detected"]]
    return {
        "what": label,
        "unobservable": unobservable,
        "onsets": len(onsets),
        "detected": len(delays),
        "share": _share(len(delays), len(onsets)),
        "median_delay_min": _round(quantile([d / 60 for d in delays], 0.5)),
        "max_delay_min": _round(max(delays) / 60) if delays else None,
        "missed": [
            {k: o[k] for k in ("bed", "grade", "true_ts", "defined_ts", "defined_by")}
            for o in onsets
            if not o["detected"]
        ][:20],
    }


def _round(v: float | None, n: int = 1) -> float | None:
    return None if v is None else round(v, n)


def forecast_summary(fc: list[dict], cases: int, risk_raises: int) -> dict[str, Any]:
    samples = [s for f in fc for s in f["samples"]]
    ps = [p for p, _ in samples]
    ys = [y for _, y in samples]
    pos = sum(ys)
    out: dict[str, Any] = {
        "hourly_samples": len(samples),
        "positives": pos,
        "prevalence": _round(pos / len(ys), 4) if ys else None,
        "auroc": _round(auroc_exact(ps, ys), 3) if ps else None,
        "auprc": _round(auprc(ps, ys), 3) if ps else None,
        "brier": _round(sum((p - y) ** 2 for p, y in samples) / len(samples), 4)
        if samples
        else None,
        "calibration": [],
        "risk_alerts": risk_raises,
        "risk_alerts_per_case": _round(risk_raises / cases, 2) if cases else None,
    }
    bins = [[0, 0.0, 0] for _ in CAL_EDGES[1:]]
    for p, y in samples:
        b = bins[min(len(bins) - 1, max(0, bisect_right(CAL_EDGES, p) - 1))]
        b[0], b[1], b[2] = b[0] + 1, b[1] + p, b[2] + y
    for i, (n, sp, sy) in enumerate(bins):
        out["calibration"].append(
            {
                "bin": f"{CAL_EDGES[i]:g}-{CAL_EDGES[i + 1]:g}",
                "n": n,
                "predicted": _round(sp / n, 3) if n else None,
                "observed": _round(sy / n, 3) if n else None,
            }
        )
    leads = [lead for f in fc for lead in f["leads"]]
    chosen = None
    for thr in sorted(THRESHOLDS, reverse=True):
        got = [lead[str(thr)] for lead in leads if lead.get(str(thr)) is not None]
        if leads and len(got) / len(leads) >= SENSITIVITY:
            chosen = {
                "threshold": thr,
                "onsets": len(leads),
                "warned": len(got),
                "sensitivity": _share(len(got), len(leads)),
                "median_lead_h": _round(quantile([g / 3600 for g in got], 0.5), 2),
            }
            break
    out["lead_at_sensitivity_80"] = chosen or {"onsets": len(leads), "threshold": None}
    return out


def summarise(beds: list[dict], forecasts: list[dict] | None = None) -> dict[str, Any]:
    """Figures per cohort and for all cohorts together."""
    cohorts = sorted({b["cohort"] for b in beds})
    out = {}
    for cohort in [*cohorts, "all"] if len(cohorts) > 1 else cohorts:
        mine = [b for b in beds if cohort in ("all", b["cohort"])]
        fc = [f for f in forecasts or [] if cohort in ("all", f["cohort"])]
        out[cohort] = cohort_summary(mine, fc, forecasts is not None)
    return out


def cohort_summary(beds: list[dict], fc: list[dict], with_forecast: bool) -> dict[str, Any]:
    days = sum(b["days"] for b in beds)
    quiet = sum(b["quiet_days"] for b in beds)
    onsets = [o for b in beds for o in b["onsets"]]
    g2 = [o for o in onsets if o["grade"] == 2]
    g3 = [o for o in onsets if o["grade"] >= 3]
    total: dict[str, Counter] = {}
    for name in ("raises", "false_raises", "false_by_confounder", "notifications", "act_alerts"):
        total[name] = sum((Counter(b[name]) for b in beds), Counter())
    false = sum(n for k, n in total["false_raises"].items())
    acts = sum(total["act_alerts"].values())
    notes = sum(total["notifications"].values())
    out: dict[str, Any] = {
        "patients": len(beds),
        "patient_days": round(days, 2),
        "quiet_patient_days": round(quiet, 2),
        "detection": {
            "grade2": detection(g2, "first rise to CRS grade >= 2 of an episode"),
            "grade3": detection(g3, "rise to CRS grade >= 3"),
            "masked_fever": detection(
                [o for o in onsets if o.get("masked")], "onsets after tocilizumab/steroids"
            ),
            "oxygen_started": detection(
                [o for o in onsets if o.get("after_care") == "oxygen"],
                "defined by oxygen started",
            ),
            "vasopressor_started": detection(
                [o for o in onsets if o.get("after_care") == "vasopressor"],
                "defined by a vasopressor started",
            ),
        },
        "burden": {
            "false_tier2_raises": false,
            "false_tier2_per_patient_day": _rate(false, days),
            "false_tier2_per_quiet_patient_day": _rate(false, quiet),
            "act_alerts": acts,
            "act_alerts_per_patient_day": _rate(acts, days),
            "notifications": notes,
            "notifications_per_patient_day": _rate(notes, days),
            "false_raises_by_kind_tier": dict(total["false_raises"].most_common()),
            "false_raises_during_confounders": dict(total["false_by_confounder"].most_common()),
            "raises_by_kind_tier": dict(total["raises"].most_common()),
            "act_alerts_by_kind_tier": dict(total["act_alerts"].most_common()),
            "notifications_by_event_kind_tier": dict(total["notifications"].most_common()),
        },
    }
    if with_forecast:
        risk = sum(n for k, n in total["raises"].items() if k.startswith("risk/"))
        out["forecast"] = forecast_summary(fc, len(g2), risk)
        seen = [o for o in g2 if o.get("observable", True)]
        leads = [o["risk_alert_lead_s"] / 3600 for o in seen if o.get("risk_alert_lead_s")]
        out["forecast"]["risk_alert_lead"] = {
            "what": "first risk alert in the 12 h before the rule-based grade >= 2 alert",
            "onsets": len(seen),
            "warned": len(leads),
            "median_h": _round(quantile(leads, 0.5), 2),
        }
    return out


def _f(v: Any, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


HEADER = (
    f"{'run':<14} {'cohort':<11} {'pt-days':>7} {'g>=2 det':>9} {'g>=3 det':>9} "
    f"{'masked':>7} {'med/max delay min':>17} {'false t>=2/pd':>13} {'act/pd':>7} "
    f"{'notif/pd':>8} {'AUROC':>6} {'AUPRC(prev)':>12} {'lead h@80%':>10} {'risk/case':>9}"
)


def table_row(label: str, cohort: str, s: dict[str, Any]) -> str:
    det, bur, fc = s["detection"], s["burden"], s.get("forecast") or {}
    g2, g3, m = det["grade2"], det["grade3"], det["masked_fever"]
    lead = (fc.get("lead_at_sensitivity_80") or {}).get("median_lead_h")
    return (
        f"{label:<14} {cohort:<11} {s['patient_days']:>7.1f} "
        f"{g2['detected']:>4}/{g2['onsets']:<4} {g3['detected']:>4}/{g3['onsets']:<4} "
        f"{m['detected']:>3}/{m['onsets']:<3} "
        f"{_f(g2['median_delay_min'], '.1f'):>8}/{_f(g2['max_delay_min'], '.1f'):<8} "
        f"{_f(bur['false_tier2_per_patient_day'], '.2f'):>13} "
        f"{_f(bur['act_alerts_per_patient_day'], '.2f'):>7} "
        f"{_f(bur['notifications_per_patient_day'], '.2f'):>8} "
        f"{_f(fc.get('auroc'), '.3f'):>6} "
        f"{_f(fc.get('auprc'), '.3f'):>5}({_f(fc.get('prevalence'), '.3f')}) "
        f"{_f(lead, '.1f'):>10} {_f(fc.get('risk_alerts_per_case'), '.1f'):>9}"
    )


def table(rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    return "\n".join([HEADER, *(table_row(*r) for r in rows)])
