"""`replay FILE`: recorded messages through grading and alerting, as fast as they go.

FILE is JSONL, one message a line: {"ts": time it was delivered (ISO or epoch), "topic",
"payload": text} (what `simulate --record` writes). The daemon's own pipeline runs on a
throw-away database with a clock that reads the recording's time, so stale and lost
vitals, holds and escalations happen as they would have. Prints the alerts it would have
raised; with `--truth` (what `simulate --truth` writes) also how well they matched.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from monitor import config as config_mod
from monitor.clock import iso
from monitor.ingest.validate import parse_ts
from monitor.ops.metrics import Metrics
from monitor.outputs.alerting import Alerting
from monitor.pipeline import Outbox, Pipeline

ONSET_GRADE = 2  # the onsets scored: true CRS grade >= 2
EARLY_S = 12 * 3600  # an alert up to 12 h before an onset counts for it (forecasts)
LATE_S = 6 * 3600  # ... and up to 6 h after it
ALERT_KINDS = ("crs", "icans", "news2", "risk")  # the clinical alerts that are scored


class ReplayError(Exception):
    pass


@dataclass
class Clock:
    t: float = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Result:
    messages: int = 0
    rejected: int = 0
    alerts: list[dict] = field(default_factory=list)  # raised/escalated, notified


def read_records(path: Path) -> list[tuple[float, str, bytes]]:
    out = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                out.append((parse_ts(rec["ts"]), rec["topic"], rec["payload"].encode()))
            except Exception as e:  # any malformed line is the file's fault
                raise ReplayError(f"{path}:{n}: not a recorded message ({e})") from None
    return out


def replay(records, cfg: config_mod.Config, progress: TextIO | None = None) -> Result:
    if not records:
        raise ReplayError("no messages to replay")
    prefix = records[0][1].split("/", 1)[0]
    tmp = tempfile.TemporaryDirectory(prefix="crswatch-replay-")
    data = {"mqtt": {"topic_prefix": prefix}, "storage": {"path": f"{tmp.name}/replay.db"}}
    cfg = config_mod.Config({**cfg.values, **config_mod.from_dict(data).values}, None, cfg.alerting)
    clock = Clock(records[0][0])
    pipe = Pipeline.open(cfg, clock, Metrics(), Outbox(), durable=False)
    alerting = Alerting(settings=cfg.alerting, pipeline=pipe, clock=clock, prefix=prefix)
    alerting.keep_decisions = True
    result = Result()
    last_tick = last_check = clock.t
    step = max(1, len(records) // 50)
    try:
        for i, (ts, topic, payload) in enumerate(records):
            clock.t = max(clock.t, ts)
            item = pipe.process_now(topic, payload)
            result.messages += 1
            result.rejected += item.kind == "reject"
            if clock.t - last_check >= cfg["state.check_interval_s"]:
                pipe.add_rows(pipe.ward.tick(clock.t))
                last_check = clock.t
            for _, _, state in pipe.ward.take_dirty():
                alerting.on_state(state)
            if clock.t - last_tick >= 1.0:
                alerting.tick()
                last_tick = clock.t
            if i % 1000 == 0:
                pipe.flush()
            if progress is not None and (i % step == 0 or i == len(records) - 1):
                done = (i + 1) / len(records)
                progress.write(
                    f"\rreplay [{'#' * int(done * 30):<30}] {done:4.0%} "
                    f"{i + 1}/{len(records)} messages"
                )
                progress.flush()
        if progress is not None:
            progress.write("\n")
    finally:
        pipe.store.close()
        tmp.cleanup()
    result.alerts = [
        {**d.alert, "event": d.event, "reason": d.reason}
        for d in alerting.decisions
        if d.notify and d.alert.get("id") and d.event in ("raised", "escalated")
    ]
    return result


def score(alerts: list[dict], truth_path: Path) -> dict:
    """For true CRS grade >= 2 onsets: the share alerted (a tier >= 2 alert of the bed
    from 12 h before to 6 h after) and the delay; false tier >= 2 alerts per patient-day
    (raised while the true grade was below 2, ICANS 0, and no onset followed in 12 h)."""
    grades: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    for line in Path(truth_path).read_bytes().splitlines():
        rec = orjson.loads(line) if line.strip() else {}
        if "crs_grade" in rec:
            grades.setdefault((rec["ward"], rec["bed"]), []).append(
                (parse_ts(rec["ts"]), rec["crs_grade"], rec.get("icans_grade") or 0)
            )
    onsets, span = {}, 0.0
    for key, seq in grades.items():
        seq.sort()
        span += seq[-1][0] - seq[0][0]
        first = next((t for t, g, _ in seq if g >= ONSET_GRADE), None)
        if first is not None:
            onsets[key] = first
    serious = [
        a for a in alerts if a["tier"] >= 2 and a["kind"] in ALERT_KINDS and a["event"] == "raised"
    ]
    delays, false, false_crs = [], 0, 0
    for key, onset in onsets.items():
        hits = [
            a["ts"] - onset
            for a in serious
            if (a["ward"], a["bed"]) == key and -EARLY_S <= a["ts"] - onset <= LATE_S
        ]
        if hits:
            delays.append(min(hits))  # the first alert; negative: before the onset
    for a in serious:
        seq = grades.get((a["ward"], a["bed"]), [])
        now = [(g, i) for t, g, i in seq if t <= a["ts"]]
        g, icans = now[-1] if now else (0, 0)
        onset = onsets.get((a["ward"], a["bed"]))
        soon = onset is not None and 0 <= onset - a["ts"] <= EARLY_S
        if g < ONSET_GRADE and icans == 0 and not soon:
            false += 1
            false_crs += a["kind"] == "crs"
    delays.sort()
    days = span / 86400
    return {
        "onsets": len(onsets),
        "alerted": len(delays),
        "share_alerted": round(len(delays) / len(onsets), 3) if onsets else None,
        "median_delay_min": round(delays[len(delays) // 2] / 60, 1) if delays else None,
        "false_alerts": false,
        "false_crs_alerts": false_crs,
        "patient_days": round(days, 1),
        "false_alerts_per_patient_day": round(false / days, 3) if days else None,
        "false_crs_alerts_per_patient_day": round(false_crs / days, 3) if days else None,
    }


def main_replay(
    path: str, truth: str | None, cfg: config_mod.Config, out=sys.stdout, err=sys.stderr
) -> int:
    try:
        records = read_records(Path(path))
        result = replay(records, cfg, progress=err if err.isatty() else None)
    except FileNotFoundError:
        print(f"crswatch: replay: no such file: {path}", file=err)
        return 2
    except ReplayError as e:
        print(f"crswatch: replay: {e}", file=err)
        return 2
    for a in result.alerts:
        out.write(
            f"{iso(a['ts'])}  {a['ward']}/{a['bed']}  tier {a['tier']}  "
            f"{a['event']:<9} {a['kind']:<8} {a['message']}\n"
        )
    summary = {
        "messages": result.messages,
        "rejected": result.rejected,
        "alerts": len(result.alerts),
    }
    if truth:
        try:
            summary["against_truth"] = score(result.alerts, Path(truth))
        except (OSError, ValueError) as e:
            print(f"crswatch: replay: truth file: {e}", file=err)
            return 2
    out.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
