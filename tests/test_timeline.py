"""The daemon's clinical state over time, through the real pipeline (router, SQLite
writer, ward) with an injected clock: tests read as timelines."""

from __future__ import annotations

import orjson
import pytest

from monitor import config
from monitor.ops.metrics import Metrics
from monitor.pipeline import Outbox, Pipeline
from monitor.state.view import to_wire
from tests.support.db import query

T0 = 1_795_000_000.0  # admission time


class FakeClock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Ward:
    """One bed, w1/b1, admitted at T0, driven message by message."""

    def __init__(self, tmp_path, clock: FakeClock):
        self.cfg = config.from_dict({"storage": {"path": str(tmp_path / "t.db")}})
        self.clock = clock
        self.db = self.cfg["storage.path"]
        self.open()
        self.send("admit", {"patient_id": "P1", "ts": T0, "infusion_ts": T0 - 86400})

    def open(self):
        self.pipe = Pipeline.open(self.cfg, self.clock, Metrics(), Outbox())

    def send(self, kind: str, body, at: float | None = None):
        if at is not None:
            self.clock.t = at
        item = self.pipe.process_now(f"crs/w1/b1/{kind}", orjson.dumps(body))
        assert item.kind != "reject", item.reason
        return item

    def vitals(self, t: float, **values):
        return self.send("vitals", {"ts": t, **values}, at=max(self.clock.t, t))

    def care(self, t: float, **body):
        return self.send("care", {"ts": t, **body}, at=max(self.clock.t, t))

    def state(self) -> dict:
        adm_id = next(iter(self.pipe.ward.beds))
        return to_wire(self.pipe.ward.state_of(adm_id)[2])

    def timeline(self) -> list[tuple]:
        self.pipe.flush()
        return query(
            self.db,
            "SELECT ts - ?, crs_grade, crs_at_least, late, reasons FROM grades ORDER BY id",
            T0,
        )


NORMAL = {"hr": 80, "rr": 14, "spo2": 97, "sbp": 120, "map": 85, "acvpu": "A"}


@pytest.fixture
def ward(tmp_path):
    return Ward(tmp_path, FakeClock(T0))


def crs_changes(ward) -> list[tuple[float, int | None]]:
    return [(t, g) for t, g, *_ in ward.timeline()]


def test_fever_then_low_flow_oxygen_is_a_timeline_of_grade_changes(ward):
    ward.vitals(T0 + 10, temp_c=37.2, **NORMAL)
    ward.vitals(T0 + 60, temp_c=38.4)
    ward.care(T0 + 120, type="oxygen", device="nasal_cannula", flow_lpm=3)
    ward.care(T0 + 180, type="oxygen", device="simple_face_mask", flow_lpm=5)
    assert crs_changes(ward)[-4:] == [(10, 0), (60, 1), (120, 2), (180, 3)]
    reasons = orjson.loads(ward.timeline()[-2][4])
    assert reasons[:2] == ["fever 38.4 C", "oxygen by nasal cannula 3 L/min"]
    assert ward.state()["crs_grade"] == 3


def test_one_low_pressure_is_not_hypotension_two_are(ward):
    ward.vitals(T0 + 10, temp_c=38.6, **NORMAL)
    ward.vitals(T0 + 20, sbp=84, map=60)
    assert ward.state()["crs_grade"] == 1  # one reading never makes hypotension
    ward.vitals(T0 + 30, sbp=86, map=62)
    assert ward.state()["crs_grade"] == 2
    assert "hypotension" in " ".join(ward.state()["reasons"])


def test_masked_fever_is_remembered_and_resolution_is_grade_0(ward):
    ward.vitals(T0 + 10, temp_c=38.9, **NORMAL)
    ward.care(T0 + 20, type="oxygen", device="nasal_cannula", flow_lpm=2)
    ward.care(T0 + 30, type="medication", drug="tocilizumab")
    ward.vitals(T0 + 3600, temp_c=36.8)  # fever gone after tocilizumab: still grade 2
    assert ward.state()["crs_grade"] == 2
    ward.care(T0 + 7200, type="oxygen", device="room_air")
    assert ward.state()["crs_grade"] is None  # SpO2 from an hour ago is lost: unknown
    ward.vitals(T0 + 7210, spo2=96, sbp=118, map=84)
    assert ward.state()["crs_grade"] == 0


def test_a_lost_temperature_feed_makes_the_grade_unknown_not_normal(ward):
    ward.vitals(T0 + 10, temp_c=37.0, **NORMAL)
    assert ward.state()["crs_grade"] == 0
    lost = ward.cfg["vitals.temp_lost_s"]
    for t in range(60, int(lost) + 600, 60):  # the monitor keeps streaming, the probe died
        ward.vitals(T0 + 10 + t, hr=80, spo2=97, rr=14)
    state = ward.state()
    assert state["vitals"]["temp_c"]["status"] == "lost"
    assert state["crs_grade"] is None
    assert crs_changes(ward)[-1][1] is None


def test_stale_and_lost_show_without_any_message_arriving(ward):
    ward.vitals(T0 + 10, temp_c=37.0, **NORMAL)
    ward.clock.t = T0 + 10 + ward.cfg["vitals.fast_stale_s"] + 1
    ward.pipe.add_rows(ward.pipe.ward.tick(ward.clock.t))
    assert ward.state()["vitals"]["hr"]["status"] == "stale"
    ward.clock.t = T0 + 10 + ward.cfg["vitals.fast_lost_s"] + 1
    ward.pipe.add_rows(ward.pipe.ward.tick(ward.clock.t))
    state = ward.state()
    assert state["vitals"]["spo2"]["status"] == "lost"
    assert state["news2"]["complete"] is False and state["news2"]["band"] is None


def test_late_readings_are_graded_at_their_own_time_without_rewinding_now(ward):
    ward.vitals(T0 + 10, temp_c=38.5, **NORMAL)
    ward.vitals(T0 + 600, sbp=118, map=84, hr=90, spo2=96)  # the present
    # a gateway flushes its buffer: two low pressures from ten minutes ago
    ward.vitals(T0 + 300, sbp=82, map=58)
    ward.vitals(T0 + 310, sbp=83, map=59)
    state = ward.state()
    assert state["vitals"]["sbp"]["value"] == 118  # the newest reading still stands
    assert state["crs_grade"] == 1  # now: pressure has recovered
    late = [r for r in ward.timeline() if r[3] == 1]
    assert late and late[-1][0] == 310 and late[-1][1] == 2  # then: hypotension, grade 2
    assert query(ward.db, "SELECT count(*) FROM observations")[0][0] == 4


def test_restart_restores_state_and_fever_memory(ward, tmp_path):
    ward.vitals(T0 + 10, temp_c=38.9, **NORMAL)
    ward.care(T0 + 20, type="medication", drug="dexamethasone")
    ward.care(T0 + 30, type="vasopressor", drug="norepinephrine", action="start")
    before = ward.state()
    ward.pipe.store.close()
    ward.open()  # a restart: everything rebuilt from SQLite
    ward.vitals(T0 + 4000, temp_c=36.9)
    after = ward.state()
    assert before["crs_grade"] == after["crs_grade"] == 3  # masked fever, one pressor
    assert after["patient_id"] == "P1"


def test_deferred_grading_takes_the_beds_touched_first_first_and_no_more_than_asked(tmp_path):
    clock = FakeClock(T0 + 60)
    cfg = config.from_dict({"storage": {"path": str(tmp_path / "d.db")}})
    pipe = Pipeline.open(cfg, clock, Metrics(), Outbox())
    for b in range(5):
        pipe.process_now(f"crs/w1/b{b}/admit", orjson.dumps({"patient_id": f"P{b}", "ts": T0}))
    ward = pipe.ward
    ward.defer = True
    ward.take_dirty()
    for b in (3, 1, 4, 0, 2, 3):  # b3 touched again: it keeps its place, the first
        pipe.process_now(f"crs/w1/b{b}/vitals", orjson.dumps({"ts": T0 + 50, **NORMAL}))
    bed_of = {rec_id: rec.bed for rec_id, rec in ward.records.items()}
    ward.reassess_touched(T0 + 60, limit=2)
    assert ward.graded_in_pass == 2
    assert sorted(bed for _, bed, _ in ward.take_dirty()) == ["b1", "b3"]
    assert [bed_of[a] for a in ward.touched] == ["b4", "b0", "b2"]  # wait for the next pass
    ward.reassess_touched(T0 + 60)
    assert sorted(bed for _, bed, _ in ward.take_dirty()) == ["b0", "b2", "b4"]
    assert not ward.touched


def test_the_risk_is_refreshed_at_its_interval_or_at_once_on_a_grade_change(tmp_path):
    class Counting:
        def __init__(self):
            self.calls = []

        def observe(self, key, snapshot, assessment, t):
            self.calls.append(t)
            return {"p": 0.1}

    w = Ward(tmp_path, FakeClock(T0))
    forecaster = w.pipe.ward.forecaster = Counting()
    w.pipe.ward.forecast_every_s = 60.0
    for s in range(0, 120, 10):  # readings every 10 s, grade unchanged
        w.vitals(T0 + 100 + s, temp_c=37.0, **NORMAL)
    assert forecaster.calls == [T0 + 100, T0 + 160]
    w.vitals(T0 + 230, temp_c=38.6, **NORMAL)  # fever: CRS grade 1, a new risk at once
    assert forecaster.calls[-1] == T0 + 230
    assert w.state()["risk"] == {"p": 0.1}
