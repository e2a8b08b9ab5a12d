"""`python main.py replay FILE [--truth T] [--decisions OUT] [--states OUT] [--report R]`.

Runs the recording through the daemon's pipeline (monitor/replay.py), prints the alerts it
would have raised (tier >= 2 raises and escalations that told someone) and a summary;
`--decisions` writes every alert decision, `--states` every published bed state, one JSON
object a line (SPEC.md); with `--truth`, scores detection, burden and the forecast per
cohort (commands/evaluation/: scoring.py, forecast_score.py), and `--report` writes every
figure as JSON.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson

from alerts.alert import Decision
from alerts.view import BedView
from commands.evaluation import forecast_score, report, scoring
from commands.evaluation.truth import read_truth
from monitor import config as config_mod
from monitor.clock import iso
from monitor.replay import ReplayError, replay


def decision_row(d: Decision) -> dict[str, Any]:
    """One line of --decisions: SPEC.md's fields, then level, receivers and message."""
    a = d.alert
    return {
        "ts": a["ts"],
        "ward": a["ward"],
        "bed": a["bed"],
        "id": a.get("id") or None,
        "kind": a["kind"],
        "tier": a["tier"],
        "event": d.event,
        "notified": bool(d.notify),
        "reason": d.reason,
        "level": a.get("level"),
        "receivers": list(d.receivers),
        "message": a.get("message"),
    }


def view_row(ts: float, ward: str, bed: str, v: BedView) -> dict[str, Any]:
    """One line of --states (SPEC.md) for the state a view is published as; risk is the
    forecast probability or null."""
    n = v.news2
    return {
        "ts": ts,
        "ward": ward,
        "bed": bed,
        "patient_id": v.patient_id,
        "crs_grade": v.crs.grade if v.crs is not None else None,
        "icans_grade": v.icans.grade if v.icans is not None else None,
        "news2_total": n.total if n is not None else None,
        "news2_band": n.band if n is not None else None,
        "risk": v.risk.get("p") if v.patient_id is not None else None,
    }


class Collector:
    """Writes --decisions/--states as they come; keeps what scoring needs."""

    def __init__(self, decisions: IO[bytes] | None, states: IO[bytes] | None, keep: bool):
        self.decisions_out, self.states_out, self.keep = decisions, states, keep
        self.decisions: list[dict] = []
        self.risks: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def on_decision(self, d: Decision) -> None:
        row = decision_row(d)
        self.decisions.append(row)
        if self.decisions_out is not None:
            self.decisions_out.write(orjson.dumps(row) + b"\n")

    def on_view(self, ts: float, ward: str, bed: str, view: BedView) -> None:
        if self.states_out is not None:
            self.states_out.write(orjson.dumps(view_row(ts, ward, bed, view)) + b"\n")
        if self.keep:
            p = view.risk.get("p")
            if p is not None:
                series = self.risks.setdefault((ward, bed), [])
                if not series or series[-1][1] != p:
                    series.append((ts, p))


def score_run(truth_path: Path, c: Collector) -> tuple[dict, list[dict], list[dict]]:
    """(summary per cohort, raw bed scores, raw forecast scores)."""
    truth = read_truth(truth_path)
    beds = scoring.score(truth, c.decisions)
    fc = [
        forecast_score.score_bed(t, c.risks.get(key, []), b["onsets"])
        for (key, t), b in zip(truth.items(), beds, strict=True)
    ]
    return report.summarise(beds, fc), beds, fc


def run(
    path: str,
    cfg: config_mod.Config,
    *,
    truth: str | None = None,
    decisions: str | None = None,
    states: str | None = None,
    progress: IO[str] | None = None,
    ack_after: float | None = None,
    split: bool = True,
) -> dict[str, Any]:
    """Replay (and score): {"replay": counts, "summary", "raw": {"beds", "forecast"}}.
    Raises ReplayError, OSError or ValueError (a bad truth file). `split`: routing in a
    second process (monitor/replay.py); `evaluate` runs several replays at once without."""
    with open(path, "rb") as f:
        total = sum(1 for line in f if line.strip())
    if truth and not Path(truth).exists():
        raise FileNotFoundError(truth)
    with ExitStack() as stack:
        outs = [stack.enter_context(open(p, "wb")) if p else None for p in (decisions, states)]
        c = Collector(outs[0], outs[1], keep=bool(truth))
        started = time.perf_counter()
        r = replay(
            Path(path),
            cfg,
            split=split,
            on_view=c.on_view if states or truth else None,
            on_decision=c.on_decision,
            progress=progress,
            total=total,
            ack_after=ack_after,
        )
        seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "replay": {
            "messages": r.messages,
            "rejected": r.rejected,
            "gradings": r.gradings,
            "states": r.states,
            "decisions": r.decisions,
            "recorded_from": iso(r.start),
            "recorded_to": iso(r.end),
            "seconds": round(seconds, 1),
        },
        "alerts": [d for d in c.decisions if _printed(d)],
    }
    if truth:
        summary, beds, fc = score_run(Path(truth), c)
        out["summary"] = summary
        out["raw"] = {"beds": beds, "forecast": fc}
    return out


def _printed(d: dict) -> bool:
    return bool(d["id"]) and d["notified"] and d["event"] in ("raised", "escalated")


def main_replay(args, cfg: config_mod.Config, out=sys.stdout, err=sys.stderr) -> int:
    if args.report and not args.truth:
        print("crswatch: replay: --report needs --truth (what to score against)", file=err)
        return 2
    try:
        result = run(
            args.file,
            cfg,
            truth=args.truth,
            decisions=args.decisions,
            states=args.states,
            progress=err if err.isatty() else None,
            ack_after=args.ack_after,
        )
    except FileNotFoundError as e:
        print(f"crswatch: replay: no such file: {e.filename or e}", file=err)
        return 2
    except (ReplayError, ValueError, OSError) as e:
        print(f"crswatch: replay: {e}", file=err)
        return 2
    for a in result["alerts"]:
        out.write(
            f"{iso(a['ts'])}  {a['ward']}/{a['bed']}  tier {a['tier']}  "
            f"{a['event']:<9} {a['kind']:<8} {a['message']}\n"
        )
    summary = {**result["replay"], "alerts": len(result["alerts"])}
    if "summary" in result:
        rows = [("replay", c, s) for c, s in result["summary"].items()]
        out.write(report.table(rows) + "\n")
        summary["against_truth"] = result["summary"]
    if args.report:
        doc = {
            "file": args.file,
            "truth": args.truth,
            "config": str(cfg.path) if cfg.path else None,
            "replay": result["replay"],
            "ack_after_s": args.ack_after,
            "cohorts": result["summary"],
            "targets": report.TARGETS,
        }
        try:
            Path(args.report).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        except OSError as e:
            print(f"crswatch: replay: --report: {e}", file=err)
            return 2
    else:
        out.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
