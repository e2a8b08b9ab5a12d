"""A restart rebuilds the engine from stored records: nothing re-raised, no ack forgotten."""

from __future__ import annotations

import ast
import json
import pathlib

import pytest

import alerts
from alerts.alert import Alert
from alerts.config import DEFAULT
from alerts.engine import AlertEngine
from tests.support.alerts import LOW_FLOW, MASK, T0, Ward, brief, view


def restart(w: Ward) -> Ward:
    """Store the records as JSON (as the daemon would), start a new engine from them."""
    stored = json.loads(json.dumps(w.engine.records()))
    fresh = Ward()
    fresh.engine = AlertEngine.restore(DEFAULT, stored, ids=lambda: "new")
    return fresh


def test_an_acknowledged_alert_survives_a_restart_without_re_raising_or_escalating():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.engine.ack("a1", "nurse.kim", T0 + 100)
    before = w.engine.active()
    w = restart(w)
    assert w.engine.active() == before
    assert w.at(200, view(crs=2, reasons=LOW_FLOW)) == []  # not raised again
    assert [x.reason for x in w.ticks(205, 3600)] == [
        "repeat to bedside_nurse, physician_on_call skipped: acknowledged by nurse.kim"
    ]
    # still the same alert: a worsening re-alerts it under its own id
    assert brief(w.at(3700, view(crs=3, reasons=MASK)))[0][:3] == ("raised", "a1", 3)


def test_an_unacknowledged_alert_keeps_its_escalation_clock_across_a_restart():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.ticks(5, 400)  # repeated at 300
    w = restart(w)
    assert [(x.event, x.receivers) for x in w.ticks(405, 600)] == [
        ("escalated", ("charge_nurse",)),
        ("repeated", ("bedside_nurse", "physician_on_call")),
    ]


def test_a_pending_resolution_and_a_snooze_survive_a_restart():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.engine.snooze("a1", "nurse.kim", T0 + 10, 600)
    w.at(100, view(crs=0))
    w = restart(w)
    assert w.engine.active()[0]["state"] == "snoozed"
    assert [x.event for x in w.tick(400)] == ["resolved"]


def test_records_round_trip_and_resolved_or_foreign_records_are_handled():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.at(0, view(vitals={"spo2": "stale"}, bed="b2"))
    w.at(100, view(crs=0, bed="b2"))
    for rec in w.engine.records():
        assert Alert.from_record(rec).to_record() == rec
    resolved = w.engine.discharge("w1", "b1", T0 + 200)[0]
    assert resolved.alert["state"] == "resolved"
    old = {**w.engine.records()[0]}
    gone = {**old, "id": "z9", "kind": "crs", "bed": "b1", "state": "resolved"}
    e = AlertEngine.restore(DEFAULT, [old, gone])
    assert [a["id"] for a in e.active()] == ["a2"]
    with pytest.raises(ValueError, match="version"):
        AlertEngine.restore(DEFAULT, [{**old, "v": 99}])


def test_the_package_is_pure():
    """No asyncio, no I/O, no clock of its own: every time comes in as `now`."""
    banned = {"asyncio", "time", "os", "socket", "sqlite3", "threading", "random"}
    for path in pathlib.Path(alerts.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & banned, f"{path} imports {names & banned}"
        assert "open(" not in path.read_text(), path
