"""Alerts through the real daemon pipeline (router, SQLite writer, ward, engine), with an
injected clock: "fever at t=0, low-flow oxygen at t=60, expect tier 2 at t=60,
escalation at t=60+tier2_escalate_after_s unless acknowledged"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import orjson
import pytest

from alerts.audit import Anchor
from monitor import config
from monitor.outputs.alerting import Alerting
from monitor.outputs.audit_trail import append_anchor, load_key
from monitor.pipeline import Outbox
from tests.conftest import daemon_config
from tests.support.brokers import ROOT
from tests.test_timeline import NORMAL, T0, FakeClock, Ward


class AlertWard(Ward):
    """The timeline harness with alerting: after every message, dirty beds' states go to
    the alert engine as the daemon's state loop does."""

    def open(self):
        super().open()
        self.outbox = Outbox()
        self.alerting = Alerting(
            settings=self.cfg.alerting,
            pipeline=self.pipe,
            clock=self.clock,
            prefix="crs",
            outbox=self.outbox,
            public_url="https://crswatch.example",
            audit_key=load_key(f"{self.db}.audit-key"),
        )
        self.alerting.keep_decisions = True

    def send(self, kind, body, at=None):
        item = super().send(kind, body, at)
        self.evaluate()
        return item

    def evaluate(self):
        for _, _, state in self.pipe.ward.take_dirty():
            self.alerting.on_state(state)

    def at(self, t: float):
        """Let time pass to t: vitals keep streaming (a live monitor), the engine ticks."""
        while self.clock.t < t:
            step = min(t, self.clock.t + 30)
            self.vitals(step, hr=80, spo2=96, rr=14)
            self.alerting.tick()

    def events(self, kind: str = "crs") -> list[tuple]:
        return [
            (round(d.alert["ts"] - T0), d.event, d.alert["tier"], d.receivers)
            for d in self.alerting.decisions
            if d.alert["kind"] == kind and d.notify
        ]

    def mqtt(self) -> list[dict]:
        return [orjson.loads(p) for t, p, _, _ in self.outbox.queue if t.endswith("/alerts")]


@pytest.fixture
def ward(tmp_path):
    return AlertWard(tmp_path, FakeClock(T0))


FIRST = ("bedside_nurse", "physician_on_call")


def test_fever_then_oxygen_escalates_unless_acknowledged(ward):
    ward.vitals(T0, temp_c=38.5, **NORMAL)
    ward.care(T0 + 60, type="oxygen", device="nasal_cannula", flow_lpm=3)
    ward.at(T0 + 60 + 600 + 30)
    assert ward.events()[:4] == [
        (0, "raised", 1, ()),  # tier 1: the dashboard only
        (60, "raised", 2, FIRST),
        (360, "repeated", 2, FIRST),  # unacknowledged: told again every 300 s
        (660, "escalated", 2, ("charge_nurse",)),
    ]
    sent = ward.mqtt()
    assert [m["event"] for m in sent if m["kind"] == "crs"][:2] == ["raised", "escalated"]
    assert sent[0]["link"].startswith("https://crswatch.example/alerts/")
    assert set(sent[0]) >= {
        "id",
        "event",
        "tier",
        "kind",
        "ward",
        "bed",
        "patient_id",
        "ts",
        "message",
        "reason",
    }


async def test_acknowledgement_stops_the_chain_and_worsening_re_alerts(ward):
    ward.vitals(T0, temp_c=38.5, **NORMAL)
    ward.care(T0 + 60, type="oxygen", device="nasal_cannula", flow_lpm=3)
    alert = next(a for a in ward.alerting.active() if a["kind"] == "crs")
    ward.at(T0 + 300)
    acked = await ward.alerting.ack(alert["id"], "nurse.kim")
    assert acked["state"] == "acknowledged" and acked["acked_by"] == "nurse.kim"
    ward.at(T0 + 60 + 3 * 600)  # long past every escalation time
    assert [e for e in ward.events() if e[1] in ("escalated", "repeated")] == []
    # a worsening re-alerts even though acknowledged
    ward.care(ward.clock.t + 10, type="oxygen", device="non_rebreather", flow_lpm=12)
    last = ward.events()[-1]
    assert last[1:3] == ("raised", 3)
    assert "physician_on_call" in last[3] and "rapid_response" in last[3]
    reason = [
        d.reason
        for d in ward.alerting.decisions
        if d.alert["kind"] == "crs" and d.event == "raised"
    ][-1]
    assert "worsened from tier 2 to tier 3" in reason and "nurse.kim" in reason


def test_resolution_reaches_everyone_who_was_told(ward):
    ward.vitals(T0, temp_c=38.5, **NORMAL)
    ward.care(T0 + 60, type="oxygen", device="nasal_cannula", flow_lpm=3)
    ward.at(T0 + 700)  # escalated to the charge nurse too
    ward.care(T0 + 710, type="medication", drug="tocilizumab")
    ward.care(T0 + 720, type="oxygen", device="room_air")
    ward.vitals(T0 + 730, temp_c=37.0)
    ward.at(T0 + 730 + 400)  # past the resolve hold
    resolved = [e for e in ward.events() if e[1] == "resolved"]
    assert resolved and set(resolved[-1][3]) == {*FIRST, "charge_nurse"}


def test_every_decision_is_stored_with_its_reason_and_the_chain_verifies(ward, tmp_path):
    ward.vitals(T0, temp_c=38.5, **NORMAL)
    ward.care(T0 + 60, type="oxygen", device="nasal_cannula", flow_lpm=3)
    ward.at(T0 + 700)
    ward.pipe.flush()
    db = sqlite3.connect(ward.db)
    events = db.execute(
        "SELECT e.event, e.reason FROM alert_events e JOIN alerts a "
        "ON a.id = e.alert_id WHERE a.kind = 'crs' ORDER BY e.id"
    ).fetchall()
    assert [e for e, _ in events] == ["raised", "raised", "repeated", "escalated", "repeated"]
    assert all(reason for _, reason in events)
    n = db.execute("SELECT count(*) FROM audit").fetchone()[0]
    assert n == db.execute("SELECT count(*) FROM alert_events").fetchone()[0]
    a = ward.alerting  # the daemon anchors its chain outside the database (docs/security.md)
    append_anchor(f"{ward.db}.audit-anchor", Anchor.of(a.count, a.head, "t", a.audit_key))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\npath = "{ward.db}"\n')
    verify = [sys.executable, "main.py", "audit", "verify", "--config", str(cfg)]
    r = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and f"intact ({n} records" in r.stdout, r.stderr
    # tamper with one record: the command says which
    db.execute("UPDATE audit SET actor='mallory' WHERE seq=2")
    db.commit()
    r = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "record 1" in r.stderr and "modified" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_restart_keeps_alerts_and_acknowledgements(ward):
    ward.vitals(T0, temp_c=38.5, **NORMAL)
    ward.care(T0 + 60, type="oxygen", device="nasal_cannula", flow_lpm=3)
    alert = next(a for a in ward.alerting.active() if a["kind"] == "crs")
    ward.alerting.handle(ward.alerting.engine.ack(alert["id"], "nurse.kim", ward.clock.t))
    ward.pipe.flush()
    ward.pipe.store.close()
    ward.open()  # restart: engine restored from SQLite
    restored = next(a for a in ward.alerting.active() if a["kind"] == "crs")
    assert restored["id"] == alert["id"] and restored["state"] == "acknowledged"
    ward.at(T0 + 60 + 2 * 600)
    assert [e for e in ward.events() if e[1] in ("escalated", "repeated", "raised")] == []


def test_the_daemons_own_loss_of_the_broker_is_an_alert(ward):
    ward.alerting.tick(broker_connected=False)
    lost = [a for a in ward.alerting.active() if a["ward"] == "_daemon"]
    assert [(a["kind"], a["tier"]) for a in lost] == [("broker", 2)]
    ward.alerting.tick(broker_connected=True, store_ok=False, store_error="disk full")
    kinds = {a["kind"]: a["tier"] for a in ward.alerting.active() if a["ward"] == "_daemon"}
    assert kinds["store"] == 3


async def test_a_failed_reload_changes_nothing(broker, tmp_path, make_daemon):
    cfg = daemon_config(broker, tmp_path)
    path = tmp_path / "crswatch.toml"
    path.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'protocol = "{broker.protocol}"\ntopic_prefix = "{cfg.prefix}"\n'
        f'client_id = "reload-{cfg.prefix}"\n[http]\nport = 0\n'
        f'[storage]\npath = "{tmp_path / "r.db"}"\n'
    )
    d = await make_daemon(config.load(path))
    before = d.alerts.engine.settings
    path.write_text(
        path.read_text() + '[alerts.tier2]\nchain = ["nobody"]\n[alerts]\nrepeat_interval_s = -5\n'
    )
    error = d.reload()
    assert "nobody" in error and "repeat_interval_s" in error
    assert d.alerts.engine.settings is before
    path.write_text(
        path.read_text().split("[alerts.tier2]")[0] + '[alerts.tier2]\nchain = ["charge_nurse"]\n'
    )
    assert d.reload() is None
    assert d.alerts.engine.settings.routes[2].chain == (("charge_nurse",),)
