"""The daemon's own lag is not a patient's feed: feeds are judged as of the time the ward's
input is complete to (monitor/state/inputlag.py, Ward.horizon)."""

from __future__ import annotations

from monitor.ingest.items import AdmissionRecord, Item
from monitor.ingest.messages import Admission, CareEvent, Observation
from monitor.state.inputlag import InputLag
from monitor.state.ward import Ward

T0 = 1_767_600_000.0
WINDOWS = {"hr": (60.0, 300.0), "spo2": (60.0, 300.0), "rr": (60.0, 300.0)}
NORMAL = {"hr": 80.0, "spo2": 97.0, "rr": 16.0}


def test_the_lag_is_the_freshest_evidence_of_the_last_minute():
    lag = InputLag(cap_s=300.0)
    assert lag(T0) == 0.0  # nothing seen: nothing says the input is late
    lag.observe(T0, T0 - 120)
    assert lag(T0) == 120.0
    lag.observe(T0 + 10, T0 - 200)  # a gateway flushing an old buffer: not the freshest
    assert lag(T0 + 10) == 130.0 - 10  # the first batch's age, as measured when applied
    lag.observe(T0 + 20, T0 + 19)  # one bed on time: the input is not late
    assert lag(T0 + 20) == 1.0
    assert lag(T0 + 100) == 0.0  # evidence older than the window is forgotten


def test_the_lag_is_capped_and_a_clock_set_back_starts_again():
    lag = InputLag(cap_s=300.0)
    lag.observe(T0, T0 - 10 * 3600)  # one reading ten hours old, the only evidence
    assert lag(T0) == 300.0
    lag.observe(T0 - 3600, T0 - 3601)  # the clock went back an hour
    assert lag(T0 - 3600) == 1.0


def _ward(beds: int) -> tuple[Ward, list[AdmissionRecord]]:
    ward = Ward(WINDOWS)
    recs = []
    for i in range(beds):
        rec = AdmissionRecord(f"a{i}", "w1", f"b{i}", Admission(f"p{i}", T0 - 3600))
        ward.apply([Item("t", T0, "admit", "w1", rec.bed, record=rec, body=rec.admission)], T0)
        recs.append(rec)
    return ward, recs


def _reading(rec: AdmissionRecord, ts: float, **values: float) -> Item:
    obs = Observation(ts, {**NORMAL, **values})
    return Item("t", ts, "vitals", "w1", rec.bed, record=rec, body=[obs], new=[obs])


def _statuses(ward: Ward, rec: AdmissionRecord) -> set[str]:
    return {v.status for k, v in ward.last[rec.id].vitals.items() if k in NORMAL}


def test_readings_arriving_minutes_late_everywhere_are_not_stale_feeds():
    """A daemon (or a demo clock) over three minutes behind its input: every bed's newest
    reading is 200 s old when applied, beyond the stale window even widened to the
    streams' one-minute cadence (150 s). The feeds are live."""
    ward, recs = _ward(3)
    for minute in range(10):
        now = T0 + 60 * minute
        ward.apply([_reading(rec, now - 200) for rec in recs], now)
    ward.tick(now + 30)
    assert ward.input_lag(now + 30) == 200.0
    for rec in recs:
        assert _statuses(ward, rec) == {"live"}


def test_a_silent_bed_among_beds_on_time_goes_stale_and_lost():
    ward, (quiet, *others) = _ward(3)
    ward.apply([_reading(rec, T0) for rec in (quiet, *others)], T0)
    for minute in range(1, 8):
        now = T0 + 60 * minute
        ward.apply([_reading(rec, now) for rec in others], now)
        ward.tick(now)
        if minute == 2:
            assert _statuses(ward, quiet) == {"stale"}
    assert _statuses(ward, quiet) == {"lost"}
    assert all(_statuses(ward, rec) == {"live"} for rec in others)


def test_a_whole_ward_falling_silent_is_judged_on_the_clock():
    ward, recs = _ward(2)
    ward.apply([_reading(rec, T0 - 100) for rec in recs], T0)  # 100 s late...
    ward.tick(T0 + 400)  # ...then nothing for longer than the window: no evidence of lag
    assert ward.input_lag(T0 + 400) == 0.0
    assert all(_statuses(ward, rec) == {"lost"} for rec in recs)


def test_a_vasopressor_started_from_the_dashboard_counts_at_once_however_late_the_input():
    ward, (rec,) = _ward(1)
    for minute in range(5):
        now = T0 + 60 * minute
        ward.apply([_reading(rec, now - 200, sbp=85.0)], now)
    pressor = CareEvent(now, "vasopressor", {"drug": "noradrenaline", "action": "start"})
    ward.apply([Item("t", now, "care", "w1", rec.bed, record=rec, body=pressor)], now)
    assert ward.last[rec.id].snapshot.vasopressors == ("noradrenaline",)
