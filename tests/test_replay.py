"""`replay` (monitor/replay.py, commands/replay.py): the daemon's pipeline on the recorded
clock, every setting of --config honoured, --decisions and --states in SPEC.md's shapes,
a whole ward graded once per reading (not every bed every 5 s), clear errors."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from devices.ward import WardOptions, generate
from monitor import config
from monitor.config import ConfigError
from monitor.replay import replay
from tests.support.brokers import ROOT

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DECISION_KEYS = {"ts", "ward", "bed", "id", "kind", "tier", "event", "notified", "reason"}
STATE_KEYS = {
    "ts",
    "ward",
    "bed",
    "crs_grade",
    "icans_grade",
    "news2_total",
    "news2_band",
    "risk",
}


def main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    """A small lively ward at a one-minute cadence: (recording, truth, stats)."""
    d = tmp_path_factory.mktemp("replay")
    rec, tru = d / "ward.jsonl", d / "truth.jsonl"
    stats = generate(
        WardOptions(
            beds=4,
            days=0.5,
            start=T0,
            mqtt=False,
            demo=True,
            cohort="lymphoma",
            seed=7,
            fast_interval_s=60,
            record=str(rec),
            truth=str(tru),
        )
    )
    return rec, tru, stats


def test_decisions_and_states_have_specs_shapes(ward, tmp_path):
    rec, tru, stats = ward
    dec, st, rep = tmp_path / "d.jsonl", tmp_path / "s.jsonl", tmp_path / "r.json"
    r = main(
        "replay", str(rec), "--truth", str(tru), "--decisions", str(dec), "--states", str(st),
        "--report", str(rep),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    decisions = [orjson.loads(x) for x in dec.read_bytes().splitlines()]
    states = [orjson.loads(x) for x in st.read_bytes().splitlines()]
    assert decisions and states
    for d in decisions:
        assert DECISION_KEYS <= set(d)
        assert isinstance(d["ts"], float) and T0 <= d["ts"] <= T0 + 0.6 * 86400
        assert d["ward"] == "ward1" and d["bed"].startswith("bed")
        assert isinstance(d["tier"], int) and 1 <= d["tier"] <= 3
        assert isinstance(d["notified"], bool) and d["reason"]
        assert d["event"] in ("raised", "escalated", "repeated", "acknowledged", "snoozed",
                              "downgraded", "resolved", "suppressed")  # fmt: skip
    assert any(d["event"] == "raised" and d["tier"] >= 2 for d in decisions)
    assert [d["ts"] for d in decisions] == sorted(d["ts"] for d in decisions)
    for s in states:
        assert STATE_KEYS <= set(s)
        assert isinstance(s["ts"], float)
        assert s["crs_grade"] in (None, 0, 1, 2, 3, 4)
        assert s["news2_band"] in (None, "low", "low-medium", "medium", "high")
        assert s["risk"] is None or 0.0 <= s["risk"] <= 1.0
    assert {s["bed"] for s in states} == {b["bed"] for b in stats.beds}
    assert any(s["crs_grade"] and s["crs_grade"] >= 1 for s in states)
    report = orjson.loads(rep.read_bytes())
    figures = report["cohorts"]["lymphoma"]
    assert figures["patients"] == 4 and figures["patient_days"] == pytest.approx(2.0)
    assert {"detection", "burden", "forecast"} <= set(figures)
    assert report["replay"]["messages"] == stats.messages
    assert "g>=2 det" in r.stdout  # the table


def test_a_whole_ward_is_graded_once_per_reading_not_every_bed_every_5_s(ward):
    rec, _, stats = ward
    from monitor.replay import iter_records

    cfg = config.from_dict({})
    result = replay(iter_records(rec), cfg)
    assert result.messages == stats.messages and result.rejected == 0
    # every bed every 5 s would be 12 gradings a reading at a one-minute cadence
    assert result.gradings <= 1.5 * result.messages


def _quiet_spo2_recording() -> list[tuple[float, str, bytes]]:
    """One bed: full vitals every 30 s for 5 min, then SpO2 stops for 4 min while the
    rest goes on."""
    out = [
        (T0, "crs/w1/b1/admit", orjson.dumps({"patient_id": "P1", "ts": T0})),
    ]
    for i in range(1, 19):
        t = T0 + 30 * i
        v = {"ts": t, "hr": 80, "rr": 14, "temp_c": 36.8, "sbp": 120, "acvpu": "A"}
        if i <= 10:
            v["spo2"] = 97
        out.append((t, "crs/w1/b1/vitals", orjson.dumps(v)))
    return out


def _spo2_statuses(cfg) -> set[str]:
    seen: set[str] = set()

    def on_state(ts, ward, bed, state):
        v = (state.get("vitals") or {}).get("spo2")
        if v:
            seen.add(v["status"])

    replay(_quiet_spo2_recording(), cfg, on_state=on_state)
    return seen


def test_replay_honours_every_setting_not_only_alerts():
    """Regression: replay rebuilt its config from defaults, dropping every setting outside
    [alerts]. A longer SpO2 window must keep the quiet probe live."""
    default = config.from_dict({})
    assert {"live", "stale"} <= _spo2_statuses(default)  # 60 s stale, by default
    patient = config.from_dict({"vitals": {"fast_stale_s": 600.0, "fast_lost_s": 1200.0}})
    statuses = _spo2_statuses(patient)
    assert "live" in statuses and not statuses & {"stale", "lost"}


def test_config_replace_validates_and_keeps_the_rest():
    cfg = config.from_dict({"vitals": {"fast_stale_s": 90.0}, "alerts": {"repeat_interval_s": 60}})
    new = cfg.replace(**{"storage.path": "/tmp/x.db", "mqtt.topic_prefix": "ward-a"})
    assert new["storage.path"] == "/tmp/x.db" and new.prefix == "ward-a"
    assert new["vitals.fast_stale_s"] == 90.0 and new.alerting == cfg.alerting
    assert cfg["storage.path"] != "/tmp/x.db"  # a copy
    assert new.replace(**{"http.port": 9000})["http.port"] == 9000
    with pytest.raises(ConfigError, match="nope.key: unknown key"):
        cfg.replace(**{"nope.key": 1})
    with pytest.raises(ConfigError, match="mqtt.port: expected int"):
        cfg.replace(**{"mqtt.port": "80"})
    with pytest.raises(ConfigError, match="topic_prefix"):
        cfg.replace(**{"mqtt.topic_prefix": "a/b"})
    with pytest.raises(ConfigError, match="fast_stale_s must be shorter"):
        cfg.replace(**{"vitals.fast_lost_s": 10.0})


def test_bad_input_gives_one_line_and_status_2(ward, tmp_path):
    rec, _, _ = ward
    r = main("replay", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "no such file" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ts": 1, "topic": "crs/w/b/vitals", "payload": "{}"}\nnot json\n')
    r = main("replay", str(bad))
    assert r.returncode == 2 and "bad.jsonl:2" in r.stderr
    r = main("replay", str(rec), "--report", str(tmp_path / "r.json"))
    assert r.returncode == 2 and "--report needs --truth" in r.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = main("replay", str(empty))
    assert r.returncode == 2 and "no messages" in r.stderr


def test_with_ack_after_a_nurse_answers_each_alert_and_it_stops_repeating(ward):
    """`--ack-after S`: every alert that asked someone to act is acknowledged S seconds of
    recorded time later (if still active) and then does not repeat unless it worsens;
    without it nobody answers and alerts repeat."""
    rec, _, _ = ward
    from monitor.replay import iter_records

    def decisions(ack_after):
        out: list = []
        replay(iter_records(rec), config.from_dict({}), on_decision=out.append, ack_after=ack_after)
        return out

    unanswered, answered = decisions(None), decisions(300.0)
    assert not [d for d in unanswered if d.event == "acknowledged"]
    repeats = [d for d in unanswered if d.event == "repeated" and d.notify]
    assert repeats  # the demo ward alerts, and nobody answering makes them repeat
    acks = {d.alert["id"]: d for d in answered if d.event == "acknowledged"}
    assert acks and all(d.actor == "replay-nurse" for d in acks.values())
    asked = [d for d in answered if d.notify and d.receivers and d.event == "raised"]
    for d in asked:
        ack = acks.get(d.alert["id"])
        if ack is not None:  # acknowledged 300 s after it was raised (or escalated)
            assert ack.alert["acked_ts"] - d.alert["raised_ts"] >= 300.0
    acked_at = {i: d.alert["acked_ts"] for i, d in acks.items()}
    for d in answered:  # an acknowledged alert does not repeat
        if d.event == "repeated" and d.alert["id"] in acked_at:
            assert d.alert["ts"] < acked_at[d.alert["id"]]

    def heard(ds):
        return sum(1 for d in ds if d.notify and d.event in ("raised", "escalated", "repeated"))

    assert heard(answered) < heard(unanswered)


def _fields(d) -> tuple:
    return tuple(d.alert[k] for k in ("ts", "ward", "bed", "kind", "tier"))


def _everything(rec, split: bool) -> tuple[list, list, object]:
    """Every decision (without its random id) and every state of a replay of `rec`."""
    decisions: list = []
    states: list = []
    result = replay(
        rec,
        config.from_dict({}),
        split=split,
        on_decision=lambda d: decisions.append((d.event, d.notify, d.reason, *_fields(d))),
        on_state=lambda ts, ward, bed, s: states.append((ts, ward, bed, s)),
        ack_after=300.0,
    )
    return decisions, states, result


def test_replay_split_over_two_processes_decides_exactly_what_one_process_does(ward):
    """`replay FILE` routes and commits in a second process (both cores): the same
    decisions, in the same order, the same states and the same counts as one process."""
    rec, _, stats = ward
    one, two = _everything(rec, split=False), _everything(rec, split=True)
    assert one[0] and one[1]
    assert two[0] == one[0]
    assert two[1] == one[1]
    assert vars(two[2]) == vars(one[2]) and two[2].messages == stats.messages


def test_a_bad_line_read_by_the_routing_process_is_the_files_fault(ward, tmp_path):
    rec, _, _ = ward
    from monitor.replay import ReplayError

    bad = tmp_path / "bad.jsonl"
    lines = rec.read_bytes().splitlines()
    bad.write_bytes(b"\n".join([*lines[:500], b"{not json", *lines[500:]]) + b"\n")
    with pytest.raises(ReplayError, match=r"bad.jsonl:501: not a recorded message"):
        replay(bad, config.from_dict({}), split=True)
