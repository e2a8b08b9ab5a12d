"""Stage 2: inhibition, as the mutes() protocol and inside the engine."""

from __future__ import annotations

from alerts.ack import AckMuter
from alerts.inhibit import Inhibitor, collapse, mutes
from alerts.rules import Condition
from tests.support.alerts import LOW_FLOW, MASK, T0, Ward, brief, view


def cond(kind: str, tier: int, bed: str = "b1", ward: str = "w1", level: int = 0) -> Condition:
    return Condition(kind, tier, f"{kind} {tier}", {"level": level}, ward, bed)


def test_same_kind_higher_tier_mutes_the_lower_one():
    lo, hi = cond("crs", 2, level=2), cond("crs", 3, level=3)
    assert mutes(lo, [hi]) == "inhibited by tier 3 crs alert"
    assert mutes(hi, [lo]) is None
    assert mutes(lo, [cond("crs", 3, bed="b2")]) is None  # another bed
    kept, muted = collapse([lo, hi])
    assert kept == [hi] and muted == [(lo, "inhibited by tier 3 crs alert")]


def test_cross_kind_table():
    offline = cond("device", 2)
    assert mutes(cond("feed", 1), [offline]) == "inhibited by tier 2 device alert"
    assert mutes(cond("feed", 2), [offline]) == "inhibited by tier 2 device alert"
    assert mutes(cond("signal", 1), [offline]) == "inhibited by tier 2 device alert"
    assert mutes(cond("feed", 1, bed="b2"), [offline]) is None
    assert mutes(offline, [cond("feed", 2)]) is None
    # the daemon's lost broker, or its lag, mutes device and feed alerts of every bed
    broker = cond("broker", 2, ward="_daemon", bed="_daemon")
    assert mutes(cond("device", 2, bed="b9"), [broker]) == "inhibited by tier 2 broker alert"
    assert mutes(cond("crs", 2), [broker]) is None
    lag = cond("lag", 2, ward="_daemon", bed="_daemon")
    assert mutes(cond("feed", 2, bed="b9"), [lag]) == "inhibited by tier 2 lag alert"
    assert mutes(cond("news2", 2, bed="b9"), [lag]) is None
    # CRS/ICANS mute a NEWS2 of the same or a lower tier (the same team is called to the
    # bed); a NEWS2 above the grade still pages; a clinical alert mutes the forecast
    assert mutes(cond("news2", 2), [cond("crs", 3)]) == "inhibited by tier 3 crs alert"
    assert mutes(cond("news2", 3), [cond("crs", 3)]) == "inhibited by tier 3 crs alert"
    assert mutes(cond("news2", 2), [cond("crs", 2)]) == "inhibited by tier 2 crs alert"
    assert mutes(cond("news2", 2), [cond("icans", 2)]) == "inhibited by tier 2 icans alert"
    assert mutes(cond("news2", 3), [cond("crs", 2)]) is None
    assert mutes(cond("news2", 2), [cond("crs", 1)]) is None
    assert mutes(cond("risk", 2), [cond("news2", 2)]) == "inhibited by tier 2 news2 alert"
    # the highest source is named
    assert mutes(cond("risk", 2), [cond("news2", 2), cond("crs", 3)]) == (
        "inhibited by tier 3 crs alert"
    )


def test_inhibition_and_acknowledgement_share_one_protocol():
    class Acked:
        state, acked_by = "acknowledged", "nurse.kim"

    muters = [Inhibitor([cond("device", 2)]), AckMuter(0.0, str)]
    assert [m.mutes(cond("feed", 1)) for m in muters] == [
        "inhibited by tier 2 device alert",
        None,
    ]
    assert muters[1].mutes(Acked()) == "acknowledged by nurse.kim"


def test_feeds_of_an_offline_device_are_not_raised_and_said_so_once():
    w = Ward()
    d = w.at(0, view(device="offline", vitals={"spo2": "stale", "hr": "lost"}))
    assert brief(d) == [
        ("raised", "a1", 1, (), "new tier 1 alert"),  # a stable patient: a note on the tile
        (
            "suppressed",
            None,
            1,
            (),
            "tier 1 feed alert not raised: inhibited by tier 1 device alert",
        ),
    ]
    assert d[0].alert["kind"] == "device"
    assert w.at(10, view(device="offline", vitals={"spo2": "stale", "hr": "lost"})) == []
    # the device comes back, SpO2 is lost now: still muted (the device alert holds 300 s)
    assert w.at(20, view(device="online", vitals={"spo2": "lost", "hr": "lost"})) == []
    assert w.at(300, view(device="online", vitals={"spo2": "lost", "hr": "lost"})) == []
    d = w.at(320, view(device="online", vitals={"spo2": "lost", "hr": "lost"}))
    assert [(x.event, x.alert["kind"], x.alert["tier"], x.reason.split(";")[0]) for x in d] == [
        ("resolved", "device", 1, "resolved: condition absent for 300 s"),
        ("raised", "feed", 1, "new tier 1 alert"),  # one alert for both feeds
    ]
    assert d[1].alert["message"].startswith("feeds: heart rate lost (no reading for 15 min")


def test_an_active_feed_alert_is_paused_by_the_device_and_its_worsening_muted():
    w = Ward()
    assert [x.alert["kind"] for x in w.at(0, view(vitals={"spo2": "stale"}))] == ["feed"]
    d = w.at(30, view(device="offline", vitals={"spo2": "stale"}))
    assert brief(d) == [
        ("raised", "a2", 1, (), "new tier 1 alert"),
        (
            "suppressed",
            "a1",
            1,
            (),
            "inhibited by tier 1 device alert: repeats and escalation paused",
        ),
    ]
    d = w.at(60, view(device="offline", vitals={"spo2": "lost"}, icans=1))
    assert [x for x in brief(d) if x[1] == "a1"][-1] == (
        "suppressed",
        "a1",
        1,
        (),
        "worsening to tier 2 not sent: inhibited by tier 2 device alert",
    )
    assert w.at(90, view(device="offline", vitals={"spo2": "lost"}, icans=1)) == []


def test_a_tier3_crs_alert_mutes_a_worsening_news2():
    def bed(t, crs, total, band):
        reasons = (MASK if crs == 3 else LOW_FLOW if crs else []) + [f"NEWS2 {total} ({band})"]
        return w.at(t, view(crs=crs, news2=total, band=band, reasons=reasons))

    w = Ward()
    assert brief(bed(0, 0, 3, "low")) == [("raised", "a1", 1, (), "new tier 1 alert")]
    assert brief(bed(30, 3, 3, "low")) == [
        ("raised", "a2", 3, ("physician_on_call", "rapid_response"), "new tier 3 alert"),
        ("suppressed", "a1", 1, (), "inhibited by tier 3 crs alert: repeats and escalation paused"),
    ]
    assert brief(bed(60, 3, 5, "medium")) == [
        ("suppressed", "a1", 1, (), "worsening to tier 2 not sent: inhibited by tier 3 crs alert")
    ]
    # CRS improves to grade 2 at t=120; after its hold it is downgraded: the tier-2 CRS
    # alert still calls the same team to this bed, so the NEWS2 urgent stays muted
    for t in range(120, 420, 60):
        assert bed(t, 2, 5, "medium") == []
    d = bed(420, 2, 5, "medium")
    assert [(x.event, x.alert["kind"], x.alert["tier"], x.reason) for x in d] == [
        (
            "downgraded",
            "crs",
            2,
            "improved from tier 3 to tier 2 for 300 s: downgraded, nobody paged",
        ),
        ("suppressed", "news2", 1, "worsening to tier 2 not sent: inhibited by tier 2 crs alert"),
    ]
    assert [x for x in w.ticks(425, 720) if x.alert["kind"] == "news2"] == []
    # CRS improves to grade 1 (a note): from its downgrade on, the NEWS2 medium is no
    # longer explained by an urgent CRS alert, and after its 300 s delay it pages
    for t in range(720, 1080, 60):
        bed(t, 1, 5, "medium")
    d = [x for x in w.ticks(1080, 1500) if x.alert["kind"] == "news2" and x.event == "raised"]
    assert [(x.event, x.alert["tier"], x.reason) for x in d] == [
        ("raised", 2, "worsened from tier 1 to tier 2")
    ]


def test_a_muted_alert_still_resolves_to_everyone_told():
    w = Ward()
    w.at(0, view(vitals={"spo2": "lost"}, icans=1))  # watched: a lost feed is tier 2...
    feed = [(x.event, x.alert["tier"]) for x in w.ticks(5, 600) if x.alert["kind"] == "feed"]
    assert feed == [("raised", 2)]  # ... once it lasted 10 min
    w.at(600, view(device="offline", vitals={"spo2": "lost"}, icans=1))
    device = [x.alert["tier"] for x in w.ticks(605, 1200) if x.alert["kind"] == "device"]
    assert device == [2]
    # while muted, the feed alert neither repeats nor escalates (the device alert does)
    ticked = w.ticks(1215, 3195, 15)
    assert "feed" not in {x.alert["kind"] for x in ticked}
    assert [x.event for x in ticked if x.alert["kind"] == "device"][:2] == [
        "repeated",
        "escalated",
    ]
    feed = [a for a in w.engine.active() if a["kind"] == "feed"][0]
    assert feed["inhibited_by"] == "inhibited by tier 2 device alert"
    assert [x for x in w.at(3200, view(device="offline", vitals={"spo2": "live"}, icans=1))] == []
    d = [x for x in w.tick(3500) if x.alert["kind"] == "feed"]
    assert brief(d) == [
        (
            "resolved",
            "a1",
            2,
            ("bedside_nurse", "physician_on_call"),
            "resolved: condition absent for 300 s; resolution sent to everyone "
            "told: bedside_nurse, physician_on_call",
        )
    ]


def test_the_daemons_lost_broker_mutes_device_alerts_on_every_bed():
    w = Ward()
    assert [x.alert["kind"] for x in w.engine.evaluate_system(False, True, "", T0)] == ["broker"]
    d = w.at(5, view(device="offline", bed="b7", icans=1))
    assert [x for x in brief(d) if x[1] is None] == [
        (
            "suppressed",
            None,
            2,
            (),
            "tier 2 device alert not raised: inhibited by tier 2 broker alert",
        )
    ]
    assert "device" not in {a["kind"] for a in w.engine.active()}
