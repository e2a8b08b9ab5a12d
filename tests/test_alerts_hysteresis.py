"""No flapping: enter at once, leave after a hold, NEWS2 exit margins, delayed advisories."""

from __future__ import annotations

from alerts.config import parse_alerting
from alerts.hysteresis import verdict, within_margin
from alerts.rules import Condition
from tests.support.alerts import FEVER, LOW_FLOW, Ward, brief, view


def news(total: int, band: str, sp3: bool = False) -> dict:
    return view(news2=total, band=band, sp3=sp3, reasons=[f"NEWS2 {total} ({band})"])


def test_an_oscillating_crs_grade_gives_one_alert_not_many():
    w = Ward()
    decisions = []
    for t in range(0, 1800, 60):  # grade 2 and 0 in turn, every minute, for half an hour
        grade = 2 if (t // 60) % 2 == 0 else 0
        decisions += w.at(t, view(crs=grade, reasons=LOW_FLOW if grade else []))
        decisions += w.tick(t + 30)
    assert [(d.event, d.alert["id"]) for d in decisions if d.event != "repeated"] == [
        ("raised", "a1")
    ] + [("escalated", "a1")] * 2
    # it stops oscillating at 0 from t=1740: resolved 300 s later, once
    rest = w.ticks(1775, 2040)
    assert [d.event for d in rest[:-1]] == ["repeated"] * (len(rest) - 1)
    assert (rest[-1].event, rest[-1].reason.split(";")[0]) == (
        "resolved",
        "resolved: condition absent for 300 s",
    )
    assert rest[-1].alert["ts"] == 1_790_000_000 + 2040


def test_an_oscillating_news2_around_its_threshold_gives_one_alert():
    w = Ward()
    decisions = []
    for t in range(0, 3600, 30):
        decisions += w.at(t, news(5, "medium") if (t // 30) % 2 else news(4, "low"))
    # one alert, the advisory at 4: a medium that never holds 300 s pages nobody
    # (hysteresis.NEWS2_URGENT_DELAY_S)
    assert [(d.event, d.alert["id"], d.alert["tier"]) for d in decisions] == [
        ("raised", "a1", 1),
    ]
    # once 5 holds for 300 s, it is urgent
    for t in range(3600, 3900, 60):
        assert w.at(t, news(5, "medium")) == []
    d = w.at(3900, news(5, "medium"))
    assert [(x.event, x.alert["tier"], x.notify) for x in d] == [("raised", 2, True)]


def test_news2_medium_leaves_only_at_3_or_less_and_downgrades_after_the_hold():
    w = Ward()
    assert w.at(0, news(5, "medium")) == []  # a NEWS2 urgent holds 300 s before it pages
    assert brief(w.tick(300)) == [
        ("raised", "a1", 2, ("bedside_nurse", "physician_on_call"), "new tier 2 alert")
    ]
    w.engine.ack("a1", "nurse.kim", 1_790_000_310)
    for t in range(60, 3600, 60):  # 4: inside the exit margin, no change however long
        assert w.at(t, news(4, "low")) == []
    assert w.engine.active()[0]["tier"] == 2
    assert w.at(3600, news(3, "low")) == []  # below the margin: the hold starts
    assert w.at(3800, news(3, "low")) == []
    d = w.at(3900, news(3, "low"))
    assert brief(d) == [
        (
            "downgraded",
            "a1",
            1,
            (),
            "improved from tier 2 to tier 1 for 300 s: downgraded, nobody paged",
        )
    ]
    assert not d[0].notify and d[0].alert["state"] == "acknowledged"
    assert w.at(4000, news(0, "low")) == []
    assert [x.event for x in w.tick(4300)] == ["resolved"]


def test_news2_high_holds_at_6_and_a_downgrade_waits_the_hold():
    w = Ward()
    w.at(0, news(7, "high"))
    w.engine.ack("a1", "dr.lee", 1_790_000_001)
    assert w.at(60, news(6, "medium")) == []
    assert w.at(400, news(6, "medium")) == []
    assert w.at(460, news(5, "medium")) == []  # below the margin of high: hold starts
    assert w.at(500, news(7, "high")) == []  # back: the hold is cancelled
    assert w.at(560, news(5, "medium")) == []
    assert [x.event for x in w.ticks(565, 855)] == ["suppressed"]  # the muted repeat
    d = w.tick(860)
    assert [(x.event, x.alert["tier"]) for x in d] == [("downgraded", 2)]


def test_a_new_advisory_may_wait_advisory_hold_s_but_urgent_ones_never_wait():
    w = Ward(parse_alerting({"advisory_hold_s": 120}))
    assert w.at(0, view(crs=1, reasons=FEVER)) == []
    assert w.at(60, view(crs=1, reasons=FEVER)) == []
    assert brief(w.tick(120)) == [("raised", "a1", 1, (), "new tier 1 alert")]
    # a blip shorter than the hold never shows
    assert w.at(0, view(crs=1, reasons=FEVER, bed="b2")) == []
    assert w.at(60, view(crs=0, bed="b2")) == []
    assert w.ticks(60, 600) == []
    # tier 2 raises at once
    assert [x.event for x in w.at(0, view(crs=2, reasons=LOW_FLOW, bed="b3"))] == ["raised"]


def test_verdict_table():
    c = Condition("news2", 1, "NEWS2 4 (low)", {"total": 4, "level": 0})
    assert within_margin(c, 2) and not within_margin(c, 3)
    assert verdict(2, 2, c, False, None, 0, 300).action == "steady"
    assert verdict(3, 3, c, False, None, 0, 300).action == "wait"
    assert verdict(3, 3, c, False, 0, 300, 300).action == "lower"
    assert verdict(2, 2, None, False, 0, 299, 300).action == "wait"
    assert verdict(2, 2, None, False, 0, 300, 300).reason == (
        "resolved: condition absent for 300 s"
    )
    assert verdict(2, 2, None, True, 0, 9999, 300).action == "steady"  # unknown is not absent
    worse = Condition("crs", 3, "CRS grade 3", {"level": 3})
    assert verdict(2, 2, worse, True, 0, 1, 300).action == "worsen"


def test_an_alert_held_inside_its_exit_margin_says_the_total_the_tile_shows():
    """Issue 18: a tile said NEWS2 4 while its alert said "NEWS2 5 (medium)"."""
    w = Ward()
    w.at(0, news(5, "medium"))
    w.tick(300)
    w.at(360, news(4, "low"))
    (a,) = w.engine.active()
    assert (a["tier"], a["message"]) == (2, "NEWS2 4 (low)")
