"""The alert engine as timelines with an injected clock (t in seconds after T0)."""

from __future__ import annotations

import pytest

from alerts.config import parse_alerting
from alerts.engine import UnknownAlert
from tests.support.alerts import FEVER, LOW_FLOW, MASK, T0, Ward, brief, view

NURSE_PHYS = ("bedside_nurse", "physician_on_call")


def test_crs_timeline_ack_stops_escalation_worsening_realerts_resolution_reaches_all():
    w = Ward()
    # fever at t=0: CRS grade 1, a tier-1 advisory to the dashboard only
    d = w.at(0, view(crs=1, reasons=FEVER))
    assert brief(d) == [("raised", "a1", 1, (), "new tier 1 alert")]
    assert d[0].channels == ("dashboard",) and d[0].notify
    assert d[0].alert["message"] == "CRS grade 1: fever 38.4 C"
    # low-flow oxygen at t=60: grade 2, tier 2 to the bedside nurse and physician on call
    d = w.at(60, view(crs=2, reasons=LOW_FLOW))
    assert brief(d) == [("raised", "a1", 2, NURSE_PHYS, "worsened from tier 1 to tier 2")]
    assert d[0].channels == ("dashboard", "mqtt")
    assert d[0].alert["message"] == ("CRS grade 2: fever 38.4 C, oxygen by nasal cannula 3 L/min")
    assert w.at(120, view(crs=2, reasons=LOW_FLOW)) == []  # unchanged: nothing said
    assert w.ticks(65, 295) == []
    # acknowledged at t=300
    d = w.engine.ack("a1", "nurse.kim", T0 + 300)
    assert brief(d) == [
        ("acknowledged", "a1", 2, NURSE_PHYS, "acknowledged by nurse.kim: escalation stopped")
    ]
    assert d[0].actor == "nurse.kim" and d[0].alert["state"] == "acknowledged"
    # the repeat due at t=360 and the escalation due at t=660 are muted: said once, quietly
    d = w.ticks(300, 895)
    assert brief(d) == [
        (
            "suppressed",
            "a1",
            2,
            (),
            "repeat to bedside_nurse, physician_on_call skipped: acknowledged by nurse.kim",
        )
    ]
    assert not d[0].notify
    assert w.engine.active()[0]["told"] == list(NURSE_PHYS)
    assert w.engine.active()[0]["escalation_level"] == 0
    # worsening to grade 3 at t=900 re-alerts although acknowledged
    d = w.at(900, view(crs=3, reasons=MASK))
    assert brief(d) == [
        (
            "raised",
            "a1",
            3,
            (*NURSE_PHYS, "rapid_response"),
            "worsened from tier 2 to tier 3; acknowledgement by nurse.kim "
            "cleared, escalation restarted",
        )
    ]
    assert d[0].alert["state"] == "active" and d[0].alert["acked_by"] is None
    # tier 3 escalates after 300 s: the attending, and a repeat to those told
    d = w.ticks(905, 1200)
    assert brief(d) == [
        (
            "escalated",
            "a1",
            3,
            ("attending",),
            "not acknowledged within 300 s: escalated to attending",
        ),
        (
            "repeated",
            "a1",
            3,
            (*NURSE_PHYS, "rapid_response"),
            "not acknowledged: repeated to bedside_nurse, physician_on_call, rapid_response "
            "(every 300 s)",
        ),
    ]
    # the condition clears at t=1250; acknowledged at 1260; resolved 300 s after it cleared
    assert w.at(1250, view(crs=0)) == []
    w.engine.ack("a1", "dr.lee", T0 + 1260)
    assert [x.reason for x in w.ticks(1265, 1545)] == [
        "repeat to bedside_nurse, physician_on_call, rapid_response, attending skipped: "
        "acknowledged by dr.lee"
    ]
    d = w.tick(1550)
    everyone = (*NURSE_PHYS, "rapid_response", "attending")
    assert brief(d) == [
        (
            "resolved",
            "a1",
            3,
            everyone,
            "resolved: condition absent for 300 s; resolution sent to everyone "
            "told: bedside_nurse, physician_on_call, rapid_response, attending",
        )
    ]
    assert d[0].notify and d[0].alert["state"] == "resolved"
    assert w.engine.active() == []


def test_without_ack_tier2_repeats_then_escalates_stage_by_stage():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    assert brief(w.ticks(5, 300)) == [
        (
            "repeated",
            "a1",
            2,
            NURSE_PHYS,
            "not acknowledged: repeated to bedside_nurse, physician_on_call (every 300 s)",
        )
    ]
    assert [(x.event, x.receivers) for x in w.ticks(305, 600)] == [
        ("escalated", ("charge_nurse",)),
        ("repeated", NURSE_PHYS),
    ]
    assert [(x.event, x.receivers) for x in w.ticks(605, 1200)] == [
        ("repeated", (*NURSE_PHYS, "charge_nurse")),
        ("escalated", ("attending",)),
        ("repeated", (*NURSE_PHYS, "charge_nurse")),
    ]
    # the chain is exhausted: repeats only
    assert [x.event for x in w.ticks(1205, 1800)] == ["repeated", "repeated"]
    assert w.engine.active()[0]["escalation_level"] == 2


def test_ack_at_any_stage_stops_the_chain_for_good():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.ticks(5, 600)  # escalated to charge_nurse
    w.engine.ack("a1", "charge.ann", T0 + 610)
    later = w.ticks(615, 7200)
    assert [x.event for x in later] == ["suppressed"]
    assert later[0].reason == (
        "repeat to bedside_nurse, physician_on_call, charge_nurse "
        "skipped: acknowledged by charge.ann"
    )


def test_higher_grade_within_the_same_tier_re_alerts():
    w = Ward()
    w.at(0, view(crs=3, reasons=MASK))
    w.engine.ack("a1", "dr.lee", T0 + 30)
    d = w.at(60, view(crs=4, reasons=["fever 39.1 C", "oxygen by CPAP"]))
    assert brief(d) == [
        (
            "raised",
            "a1",
            3,
            ("physician_on_call", "rapid_response"),
            "worsened within tier 3 from grade 3 to grade 4; acknowledgement "
            "by dr.lee cleared, escalation restarted",
        )
    ]


def test_acknowledging_twice_changes_nothing_and_unknown_ids_are_refused():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.engine.ack("a1", "nurse.kim", T0 + 10)
    d = w.engine.ack("a1", "nurse.bo", T0 + 20)
    assert brief(d) == [("acknowledged", "a1", 2, (), "already acknowledged by nurse.kim at 14:13")]
    assert not d[0].notify
    with pytest.raises(UnknownAlert):
        w.engine.ack("nope", "nurse.kim", T0 + 30)


def test_snooze_is_limited_mutes_then_re_arms():
    w = Ward(parse_alerting({"max_snooze_s": 900}))
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    d = w.engine.snooze("a1", "nurse.kim", T0 + 100, 3600)
    assert brief(d) == [
        ("snoozed", "a1", 2, (), "snoozed by nurse.kim until 14:30 (limited to 900 s)")
    ]
    assert d[0].alert["snoozed_until"] == T0 + 1000
    quiet = w.ticks(105, 995)
    assert brief(quiet) == [
        (
            "suppressed",
            "a1",
            2,
            (),
            "repeat to bedside_nurse, physician_on_call skipped: snoozed by nurse.kim until 14:30",
        )
    ]
    d = w.tick(1000)
    assert brief(d) == [
        ("repeated", "a1", 2, NURSE_PHYS, "snooze by nurse.kim expired: re-armed, told again")
    ]
    assert d[0].alert["state"] == "active"
    # re-armed: the escalation clock restarts at the expiry
    assert [x.event for x in w.ticks(1005, 1595)] == ["repeated"]
    assert [x.event for x in w.tick(1600)] == ["escalated", "repeated"]


def test_snooze_refuses_nonsense():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    with pytest.raises(ValueError):
        w.engine.snooze("a1", "nurse.kim", T0 + 1, 0)
    w.engine.ack("a1", "nurse.kim", T0 + 2)
    with pytest.raises(ValueError, match="acknowledged"):
        w.engine.snooze("a1", "nurse.kim", T0 + 3, 60)


def test_worsening_during_snooze_re_alerts_and_clears_the_snooze():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.engine.snooze("a1", "nurse.kim", T0 + 10, 600)
    d = w.at(20, view(crs=3, reasons=MASK))
    assert d[0].reason == (
        "worsened from tier 2 to tier 3; snooze by nurse.kim cleared, escalation restarted"
    )
    assert d[0].alert["state"] == "active" and d[0].alert["snoozed_until"] is None


def test_discharge_resolves_every_alert_of_the_bed_and_tells_everyone_told():
    w = Ward()
    w.at(0, view(crs=2, news2=7, band="high", reasons=LOW_FLOW + ["NEWS2 7 (high)"]))
    w.at(0, view(crs=1, reasons=FEVER, bed="b2"))
    d = w.engine.discharge("w1", "b1", T0 + 50)
    assert brief(d) == [
        (
            "resolved",
            "a1",
            3,
            ("physician_on_call", "rapid_response"),
            "resolved: patient discharged; resolution sent to everyone told: "
            "physician_on_call, rapid_response",
        ),
        (
            "resolved",
            "a2",
            2,
            NURSE_PHYS,
            "resolved: patient discharged; resolution sent to everyone told: "
            "bedside_nurse, physician_on_call",
        ),
    ]
    assert [a["bed"] for a in w.engine.active()] == ["b2"]


def test_a_new_patient_in_the_bed_resolves_the_last_patients_alerts():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    d = w.at(60, view(crs=1, reasons=FEVER, patient="P2"))
    assert [(x.event, x.alert["id"], x.alert["patient_id"]) for x in d] == [
        ("resolved", "a1", "P1"),
        ("raised", "a2", "P2"),
    ]
    assert d[0].reason.startswith("resolved: bed b1 now holds another patient")


def test_manual_resolve_does_not_page_again_while_the_condition_holds():
    w = Ward()
    w.at(0, view(vitals={"spo2": "lost"}))
    d = w.engine.resolve("a1", "nurse.kim", T0 + 30, "probe removed for a wash")
    assert brief(d) == [
        (
            "resolved",
            "a1",
            1,
            (),
            "resolved by nurse.kim: probe removed for a wash; shown on the ward dashboard",
        )
    ]
    d = w.at(40, view(vitals={"spo2": "lost"}))
    assert brief(d) == [
        (
            "suppressed",
            None,
            1,
            (),
            "not re-raised: resolved by nurse.kim while the condition held; "
            "re-arms when it clears or worsens",
        )
    ]
    assert w.at(50, view(vitals={"spo2": "lost"})) == []
    assert w.at(60, view(vitals={"spo2": "live"})) == []  # cleared: re-armed
    assert brief(w.at(70, view(vitals={"spo2": "lost"})))[0][:3] == ("raised", "a2", 1)


def test_device_offline_and_lost_vital_of_a_watched_patient_page_once_they_lasted():
    """A watched patient's device offline or feed lost: a tier-1 note at once, urgent only
    once it lasted 10 min (a monitor's technical alarm delay); a short outage pages nobody."""
    w = Ward()
    d = w.at(0, view(device="offline", crs=2, reasons=LOW_FLOW))
    assert [(x.event, x.alert["kind"], x.alert["tier"]) for x in d] == [
        ("raised", "crs", 2),
        ("raised", "device", 1),
    ]
    assert d[1].alert["message"].endswith("(urgent if it lasts 10 min)")
    assert [x for x in w.ticks(5, 595) if x.alert["kind"] == "device"] == []
    d = [x for x in w.ticks(600, 600) if x.alert["kind"] == "device"]
    assert [(x.event, x.alert["tier"], x.receivers) for x in d] == [("raised", 2, NURSE_PHYS)]
    d = w.at(0, view(vitals={"hr": "lost"}, bed="b2"))
    assert [(x.alert["kind"], x.alert["tier"]) for x in d] == [("feed", 1)]  # a stable patient
    d = w.at(0, view(vitals={"hr": "lost"}, bed="b4", crs=2, reasons=LOW_FLOW))
    assert [(x.alert["kind"], x.alert["tier"]) for x in d] == [("crs", 2), ("feed", 1)]
    # the monitor is back after 4 min: the note resolves after its hold, nobody was paged
    assert w.at(240, view(bed="b4", crs=2, reasons=LOW_FLOW)) == []
    later = w.ticks(245, 900)
    feed = [
        (x.event, x.alert["tier"])
        for x in later
        if (x.alert["bed"], x.alert["kind"]) == ("b4", "feed")
    ]
    assert feed == [("resolved", 1)]
    # a stable patient's lost feed (a note) becomes urgent at once when the patient needs
    # watching after it was already dead for more than 10 min
    d = w.at(1000, view(vitals={"hr": "lost"}, bed="b2", crs=2, reasons=LOW_FLOW))
    assert [(x.alert["kind"], x.alert["tier"]) for x in d] == [("crs", 2), ("feed", 2)]
    d = w.at(0, view(risk={"p": 0.8, "explanation": ["CRP rising"]}, bed="b3"))
    assert [(x.alert["kind"], x.alert["tier"], x.alert["message"]) for x in d] == [
        ("risk", 2, "forecast risk 0.80 (threshold 0.50): CRP rising")
    ]


def test_unknown_grade_keeps_the_alert_instead_of_resolving_it():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.engine.ack("a1", "nurse.kim", T0 + 10)
    # the thermometer is lost: the grade is undecided, nothing known puts it at 1 or more
    for t in range(60, 4000, 60):
        assert w.at(t, view(crs=None, crs_at_least=None)) == []
    assert [x.reason for x in w.ticks(4000, 4400)] == [
        "escalation to charge_nurse skipped: acknowledged by nurse.kim"
    ]
    assert w.engine.active()[0]["tier"] == 2
    # decided again, and 0: resolves after the hold
    assert w.at(4500, view(crs=0)) == []
    assert [x.event for x in w.tick(4800)] == ["resolved"]


def test_system_alerts_live_on_the_daemon_pseudo_bed():
    w = Ward()
    d = w.engine.evaluate_system(False, False, "disk full", T0)
    assert [
        (x.alert["ward"], x.alert["bed"], x.alert["kind"], x.alert["tier"], x.receivers) for x in d
    ] == [
        ("_daemon", "_daemon", "store", 3, ("physician_on_call", "rapid_response")),
        ("_daemon", "_daemon", "broker", 2, NURSE_PHYS),
    ]
    assert d[0].alert["message"] == (
        "the daemon cannot write its store: disk full; readings are not being saved"
    )
    assert w.engine.evaluate_system(True, True, "", T0 + 10) == []
    assert [x.alert["kind"] for x in w.engine.evaluate_system(True, True, "", T0 + 310)] == [
        "store",
        "broker",
    ]


def test_decision_payload_is_specs_alert_message():
    w = Ward()
    d = w.at(0, view(crs=2, reasons=LOW_FLOW))[0]
    assert d.payload() == {
        "id": "a1",
        "event": "raised",
        "tier": 2,
        "kind": "crs",
        "ward": "w1",
        "bed": "b1",
        "patient_id": "P1",
        "ts": T0,
        "message": "CRS grade 2: fever 38.4 C, oxygen by nasal cannula 3 L/min",
        "reason": "new tier 2 alert",
    }


def test_active_says_why_each_alert_is_quiet():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.at(0, view(crs=1, reasons=FEVER, bed="b2"))
    w.engine.ack("a1", "nurse.kim", T0 + 5)
    assert [(a["id"], a["state"], a["reason"]) for a in w.engine.active()] == [
        ("a1", "acknowledged", "acknowledged by nurse.kim"),
        ("a2", "active", "unchanged: already notified"),
    ]


def test_active_shows_a_pending_resolution():
    w = Ward()
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    w.engine.ack("a1", "nurse.kim", T0 + 10)
    w.at(60, view(crs=0))
    assert w.engine.active()[0]["reason"] == (
        "acknowledged by nurse.kim; condition absent since 14:14, changes at 14:19 unless it "
        "returns"
    )


def test_a_return_to_the_peak_after_a_downgrade_pages_nobody_and_age_counts_from_the_tier():
    """Issue 18: a downgrade after the hold, then the same worsening again, is the same
    episode: shown, nobody paged. Only a worse condition than the alert's peak pages."""
    w = Ward()
    d = w.at(0, view(crs=2, reasons=LOW_FLOW))
    assert d[0].event == "raised" and d[0].notify
    w.at(60, view(crs=1, reasons=FEVER))
    d = w.ticks(65, 400)
    assert [(x.event, x.alert["tier"]) for x in d if x.event == "downgraded"] == [("downgraded", 1)]
    assert d[-1].alert["tier_ts"] >= T0 + 360
    d = w.at(500, view(crs=2, reasons=LOW_FLOW))
    assert [(x.event, x.notify, x.alert["tier"]) for x in d] == [("returned", False, 2)]
    assert d[0].reason.startswith("back from grade 1 to grade 2 (tier 2)")
    assert d[0].alert["tier_ts"] == T0 + 500 and d[0].alert["raised_ts"] == T0
    d = w.at(560, view(crs=3, reasons=MASK))  # worse than ever: pages
    assert [(x.event, x.notify, x.alert["tier"]) for x in d] == [("raised", True, 3)]


def test_feed_notes_raised_by_the_daemons_own_lag_are_withdrawn_when_its_lag_alert_rises():
    """The daemon fell behind its input: every bed's readings look old. Feed notes raised
    after the daemon's newest input are its lag, not the beds' feeds: withdrawn when the
    lag alert rises (and muted until it clears); a feed dead before the lag stays."""
    w = Ward()
    d = w.at(0, view(vitals={"hr": "lost"}, bed="b1"))  # a real dead feed, before the lag
    assert [(x.alert["kind"], x.alert["tier"]) for x in d] == [("feed", 1)]
    # the daemon's newest input is at t=100; at t=390 it is 290 s behind, and two beds'
    # feeds look lost (the daemon's lag alert comes at 300 s: the race seen in the demo)
    for bed in ("b2", "b3"):
        d = w.at(390, view(vitals={"hr": "lost", "rr": "lost"}, bed=bed))
        assert [(x.event, x.alert["kind"]) for x in d] == [("raised", "feed")]
    assert w.engine.evaluate_system(True, True, "", T0 + 390, behind_s=290) == []
    d = w.engine.evaluate_system(True, True, "", T0 + 410, behind_s=310)
    assert [(x.event, x.alert["kind"], x.alert["bed"]) for x in d] == [
        ("raised", "lag", "_daemon"),
        ("resolved", "feed", "b2"),
        ("resolved", "feed", "b3"),
    ]
    assert "daemon was behind its input" in d[1].reason
    active = {(a["bed"], a["kind"]) for a in w.engine.active()}
    assert active == {("b1", "feed"), ("_daemon", "lag")}
    # while the daemon is behind, a bed's lost feed is not raised again (muted)
    d = w.at(420, view(vitals={"hr": "lost"}, bed="b2"))
    assert [x for x in d if x.event == "raised"] == []
    assert {(a["bed"], a["kind"]) for a in w.engine.active()} == active


def test_next_due_says_when_a_hold_ends_or_a_snooze_expires_so_the_pass_comes_on_time():
    """The daemon's clock pass sleeps until AlertEngine.next_due when that is sooner
    than its next second: the alert resolves at the end of its hold, not up to a second
    late. Ticking at exactly next_due does what was due, and not a moment before."""
    import math

    w = Ward()
    assert w.engine.next_due() == math.inf  # nothing active
    w.at(0, view(crs=2, reasons=LOW_FLOW))
    assert w.engine.next_due() == math.inf  # active, nothing counting down
    w.at(100.25, view(crs=0))  # the condition is gone: the hold starts
    due = w.engine.next_due()
    assert due == T0 + 100.25 + 300  # the default resolve_hold_s
    assert "resolved" not in [d.event for d in w.engine.tick(due - 0.01)]
    assert "resolved" in [d.event for d in w.engine.tick(due)]
    assert w.engine.next_due() == math.inf

    w.at(1000, view(crs=2, reasons=LOW_FLOW, bed="b2"))
    (alert,) = w.engine.active()
    w.engine.snooze(alert["id"], "nurse.kim", T0 + 1010, 600)
    assert w.engine.next_due() == T0 + 1610
    w.engine.tick(T0 + 1609.99)
    assert [a["state"] for a in w.engine.active()] == ["snoozed"]
    w.engine.tick(T0 + 1610)
    assert [a["state"] for a in w.engine.active()] == ["active"]  # re-armed then
