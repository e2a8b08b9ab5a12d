"""Stage 1: a bed's state -> conditions and tiers (SPEC "Alert tiers")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts.config import DEFAULT, parse_alerting
from alerts.rules import conditions, system_conditions
from monitor.ingest.messages import Admission, CareEvent, Observation
from monitor.state.bedstate import BedState
from monitor.state.view import bed_view
from tests.support.alerts import T0, view

WINDOWS = {
    "hr": (60.0, 300.0),
    "rr": (60.0, 300.0),
    "spo2": (60.0, 300.0),
    "sbp": (3900.0, 7800.0),
    "dbp": (3900.0, 7800.0),
    "map": (3900.0, 7800.0),
    "temp_c": (18000.0, 32400.0),
    "acvpu": (18000.0, 46800.0),
}


def kinds(v: dict, settings=DEFAULT) -> list[tuple[str, int]]:
    return [(c.kind, c.tier) for c in conditions(v, settings)]


@pytest.mark.parametrize(("grade", "tier"), [(0, None), (1, 1), (2, 2), (3, 3), (4, 3)])
def test_crs_grade_tiers(grade, tier):
    assert kinds(view(crs=grade)) == ([("crs", tier)] if tier else [])


@pytest.mark.parametrize(("grade", "tier"), [(0, None), (1, 2), (2, 2), (3, 3), (4, 3)])
def test_icans_grade_tiers(grade, tier):
    assert kinds(view(icans=grade)) == ([("icans", tier)] if tier else [])


def test_an_unknown_grade_is_alerted_at_its_lower_bound_never_as_0():
    (c,) = conditions(
        view(
            crs=None,
            crs_at_least=2,
            reasons=["fever 38.4 C", "oxygen by nasal cannula 3 L/min", "vasopressors unknown"],
        ),
        DEFAULT,
    )
    assert (c.kind, c.tier, c.level) == ("crs", 2, 2)
    assert c.reason == (
        "CRS grade at least 2: fever 38.4 C, oxygen by nasal cannula 3 L/min, vasopressors unknown"
    )
    assert c.detail == {"grade": None, "at_least": 2, "level": 2}
    assert kinds(view(crs=None, crs_at_least=None)) == []  # could be 0: nothing to alert
    assert view(crs=None, icans=None, complete=False).undecided() == {"crs", "icans", "news2"}
    assert view().undecided() == frozenset()


@pytest.mark.parametrize(
    ("total", "band", "sp3", "complete", "tier"),
    [
        (0, "low", False, True, None),
        (3, "low", False, True, 1),
        (3, "low-medium", True, True, 2),
        (5, "medium", False, True, 2),
        (7, "high", False, True, 3),
        (2, "low", False, False, 1),  # incomplete: partial total 2, still an advisory
        (5, "medium", False, False, 2),  # incomplete: at least medium
    ],
)
def test_news2_tiers(total, band, sp3, complete, tier):
    got = kinds(view(news2=total, band=band, sp3=sp3, complete=complete))
    assert got == ([("news2", tier)] if tier else [])


def test_one_feed_alert_per_bed_stale_is_advisory_lost_is_urgent_only_when_watched():
    v = view(vitals={"spo2": "stale", "hr": "lost", "temp_c": "missing", "rr": "live"})
    (c,) = conditions(v, DEFAULT)
    assert (c.kind, c.tier, c.level) == ("feed", 1, 2)  # a stable patient off the monitor
    assert c.reason == (
        "feeds: heart rate lost (no reading for 10 min, last 94 at 14:03); "
        "SpO2 stale (no reading for 2 min, last 94 at 14:11)"
    )
    assert c.detail["feeds"] == {"hr": "lost", "spo2": "stale"}
    watched = view(vitals={"hr": "lost"}, news2=5, band="medium")
    assert ("feed", 2) in kinds(watched)
    assert ("feed", 2) in kinds(view(vitals={"hr": "lost"}, crs=2))
    assert ("feed", 1) in kinds(view(vitals={"hr": "stale"}, crs=2))


def test_one_blood_pressure_cuff_is_one_feed_at_its_worst():
    v = view(vitals={"sbp": "stale", "dbp": "lost", "map": "missing"})
    (c,) = conditions(v, DEFAULT)
    assert (c.kind, c.detail["feeds"]) == ("feed", {"bp": "lost"})


def test_device_offline_and_forecast_risk():
    assert kinds(view(device="offline")) == [("device", 1)]  # a stable patient: a note
    assert ("device", 2) in kinds(view(device="offline", crs=2))  # watched: urgent
    assert kinds(view(device=None)) == []
    assert kinds(view(risk={"p": 0.49, "explanation": []})) == []
    assert kinds(view(risk={"p": 0.5, "explanation": ["CRP rising"]})) == [("risk", 2)]
    assert kinds(view(risk={"p": 0.3}), parse_alerting({"risk_threshold": 0.25})) == [("risk", 2)]


def test_system_conditions():
    assert system_conditions(True, True) == []
    got = [(c.ward, c.bed, c.kind, c.tier) for c in system_conditions(False, False, "I/O")]
    assert got == [("_daemon", "_daemon", "store", 3), ("_daemon", "_daemon", "broker", 2)]


def test_each_scale_keeps_its_own_reasons_from_a_real_bed_state():
    """The view exactly as monitor.state.view.bed_view makes it: no reason is sorted into a
    scale by its wording."""
    b = BedState(Admission("P7", T0), WINDOWS)
    b.add_observation(
        Observation(
            T0 + 10,
            {"temp_c": 38.4, "hr": 112, "rr": 22, "spo2": 93, "sbp": 96, "map": 70, "acvpu": "A"},
        )
    )
    b.add_care(CareEvent(T0 + 5, "oxygen", {"device": "nasal_cannula", "flow_lpm": 3}))
    b.add_care(CareEvent(T0 + 5, "vasopressor", {"drug": "norepinephrine", "action": "stop"}))
    b.add_care(CareEvent(T0 + 5, "neuro", {"ice_score": 8, "acvpu": "A"}))
    state = bed_view("w1", "b1", b.assess(T0 + 20), "online", {})
    assert state.crs is not None and state.icans is not None and state.news2 is not None
    assert state.crs.reasons == ("fever 38.4 C", "oxygen by nasal cannula 3 L/min")
    assert state.icans.reasons == ("ICE score 8/10", "alert (A)")
    assert state.news2.reasons[0].startswith("NEWS2 ")
    by_kind = {c.kind: c for c in conditions(state, DEFAULT)}
    assert by_kind["crs"].reason == "CRS grade 2: fever 38.4 C, oxygen by nasal cannula 3 L/min"
    assert by_kind["crs"].tier == 2
    assert by_kind["icans"].reason == "ICANS grade 1: ICE score 8/10, alert (A)"
    assert (by_kind["icans"].tier, by_kind["news2"].ward, by_kind["news2"].bed) == (2, "w1", "b1")


def test_news2_pages_only_for_what_a_crs_grade_does_not_explain():
    """Fever and tachycardia of a CRS grade 1 are the CRS alert's: NEWS2 medium from them
    alone is a tier-1 note; what CRS does not explain (breathing, pressure...) still pages."""
    scores = {"temp": 2, "hr": 2, "rr": 1, "spo2": 0, "air_or_oxygen": 0, "sbp": 0}
    v = view(crs=1, news2=5, band="medium", reasons=["fever 39.2 C", "NEWS2 5 (medium)"])
    v = replace(v, news2=replace(v.news2, scores=scores))
    by_kind = {c.kind: c for c in conditions(v, DEFAULT)}
    assert (by_kind["news2"].tier, by_kind["news2"].detail["total"]) == (1, 1)
    assert by_kind["news2"].reason == (
        "NEWS2 5 (medium); 4 of it from temperature and pulse, explained by CRS grade 1: "
        "1 beyond it"
    )
    # no CRS: the same NEWS2 pages
    v0 = replace(v, crs=replace(v.crs, grade=0, at_least=0))
    assert ("news2", 2) in kinds(v0)
    # a respiration rate scoring 3 is not explained by CRS
    worse = replace(v, news2=replace(v.news2, total=8, band="high", band_at_least="high"))
    worse = replace(worse, news2=replace(worse.news2, scores={**scores, "rr": 3, "sbp": 1}))
    assert ("news2", 2) in kinds(worse)  # 4 beyond CRS, one parameter scoring 3


def test_the_risk_alert_enters_at_the_threshold_and_holds_down_to_the_exit_margin():
    v = view(risk={"p": 0.45, "explanation": []})
    assert kinds(v) == []
    assert kinds(v) == [] and [
        (c.kind, c.tier) for c in conditions(v, DEFAULT, frozenset({"risk"}))
    ] == [("risk", 2)]
    low = view(risk={"p": 0.29})
    assert conditions(low, DEFAULT, frozenset({"risk"})) == []


def test_readings_not_believed_are_a_tier1_note():
    v = replace(view(), notes=("SpO2 80 % not persistent: check the probe",))
    (c,) = conditions(v, DEFAULT)
    assert (c.kind, c.tier, c.reason) == ("signal", 1, "SpO2 80 % not persistent: check the probe")


def test_the_daemons_lag_is_its_own_alert():
    assert system_conditions(True, True, "", behind_s=200, behind_limit_s=300) == []
    (c,) = system_conditions(True, True, "", behind_s=900, behind_limit_s=300)
    assert (c.ward, c.kind, c.tier) == ("_daemon", "lag", 2)
    assert c.reason.startswith("the daemon is 15 min behind its input")
