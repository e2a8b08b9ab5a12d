"""The dashboard in a real shift (issue 13): readings stream once a second per bed while a
nurse presses buttons the way people do (down, 150 ms, up), works through the ward by
keyboard, and a second open page sees each acknowledgement through the WebSocket; the
on-call list and the alert page on a phone; what the pages say about time, snoozes and
doses; and axe-core finds no serious or critical accessibility violation on any page,
desktop or phone. Any JavaScript error, console error or CSP violation fails a test."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.conftest import wait_for
from tests.support.browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    PRESS_MS,
    Watch,
    axe_violations,
    login,
    press,
)
from tests.support.dashboard import admit, make_user, url

NORMAL = {"hr": 78, "rr": 14, "spo2": 97, "sbp": 124, "dbp": 76, "map": 92, "acvpu": "A"}
SICK = {"hr": 136, "rr": 27, "spo2": 89, "sbp": 84, "dbp": 48, "map": 60, "temp_c": 39.6}
SICK["acvpu"] = "A"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (./run test installs it)"
)


@contextlib.asynccontextmanager
async def streaming(publisher, p: str, beds: dict[tuple[str, str], dict], clock=time.time):
    """Every bed's vitals once a second (the daemon's clock) while the block runs."""

    async def run():
        while True:
            t = clock()
            for (ward, bed), vitals in beds.items():
                await publisher(f"{p}/{ward}/{bed}/vitals", {"ts": t, **vitals})
            await asyncio.sleep(1.0)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def alert_of(d, bed: str, tier: int = 3) -> dict | None:
    return next((a for a in d.alerts.active() if a["bed"] == bed and a["tier"] >= tier), None)


def acked_by(d, bed: str, user: str) -> bool:
    return any(a["bed"] == bed and a.get("acked_by") == user for a in d.alerts.active())


async def test_a_press_on_a_streaming_ward_lands_and_every_page_sees_it(
    make_daemon, publisher, browser
):
    from playwright.async_api import expect

    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    make_user(d, "nina", "nurse")
    make_user(d, "omar", "nurse")
    beds = {("w1", f"b{i}"): (SICK if i <= 2 else NORMAL) for i in range(1, 5)}
    for ward, bed in beds:
        await admit(publisher, p, ward, bed, f"P{bed[1:]}", now)
    async with streaming(publisher, p, beds):
        await wait_for(lambda: alert_of(d, "b1") and alert_of(d, "b2"), what="two tier-3 alerts")
        first = await browser.new_context(**DESKTOP)
        second = await browser.new_context(**DESKTOP)
        page, other = await first.new_page(), await second.new_page()
        watches = [Watch(page), Watch(other)]
        await login(page, d, "nina")
        await login(other, d, "omar")
        tile = page.locator("article.tile[data-bed=b1]")
        ack = tile.locator("button[data-ack]")
        await expect(ack).to_be_visible(timeout=15000)

        # the tile is patched in place, not rebuilt: the same node after new readings
        await tile.evaluate("t => { t.probe = 'kept'; }")  # a property of this very node
        await asyncio.sleep(3)  # readings and states arrive meanwhile (not a timing test)
        assert await tile.evaluate("t => t.probe") == "kept"

        # a person's press (down, 150 ms, up) while readings stream: it acknowledges
        await press(page, ack)
        await expect(tile.locator(".tile-alert")).to_contain_text("Acknowledged by nina")
        await expect(other.locator("article.tile[data-bed=b1] .tile-alert")).to_contain_text(
            "Acknowledged by nina"
        )
        await wait_for(lambda: acked_by(d, "b1", "nina"), what="b1 acknowledged")

        # by keyboard: from the ward selector, Tab to bed b2's Acknowledge and press Enter;
        # focus is never on the page's body on the way
        await page.select_option("#ward-select", "w1")
        await page.focus("#ward-select")
        for _ in range(40):
            await page.keyboard.press("Tab")
            focused = await page.evaluate(
                """() => { const e = document.activeElement, t = e.closest('article.tile');
                    return {tag: e.tagName, ack: e.dataset.ack || null,
                            bed: t ? t.dataset.bed : null}; }"""
            )
            assert focused["tag"] != "BODY", "keyboard focus dropped to the page body"
            if focused["ack"] and focused["bed"] == "b2":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("bed b2's Acknowledge cannot be reached by Tab")
        await page.keyboard.press("Enter")
        await wait_for(lambda: acked_by(d, "b2", "nina"), what="b2 acknowledged")
        await expect(page.locator("article.tile[data-bed=b2] .tile-alert")).to_contain_text(
            "Acknowledged by nina"
        )
        await expect(other.locator("article.tile[data-bed=b2] .tile-alert")).to_contain_text(
            "Acknowledged by nina"
        )
        assert await page.evaluate("() => document.activeElement !== document.body")
        # the header tells the ward's time and its zone
        await expect(page.locator("#ward-clock")).to_contain_text("UTC")
        await first.close()
        await second.close()
    for w in watches:
        assert w.errors == []


async def test_oncall_and_alert_page_on_a_phone_with_real_presses(make_daemon, publisher, browser):
    from playwright.async_api import expect

    offset = [0.0]

    def clock():
        return time.time() + offset[0]

    d = await make_daemon(clock=clock)
    p = d.cfg.prefix
    make_user(d, "phil", "physician")
    beds = {("w2", "b7"): SICK, ("w2", "b8"): SICK}
    for ward, bed in beds:
        await admit(publisher, p, ward, bed, f"P{bed[1:]}", clock())
    async with streaming(publisher, p, beds, clock):
        await wait_for(
            lambda: len([a for a in d.alerts.active() if a["tier"] == 3]) == 2,
            what="two tier-3 alerts",
        )
        context = await browser.new_context(**PHONE)
        page = await context.new_page()
        watch = Watch(page)
        await login(page, d, "phil", "/oncall")
        card = page.locator(".alert-card.sev-3", has_text="b7").first
        await expect(card).to_be_visible(timeout=15000)
        await card.locator("button[data-ack]").click(delay=PRESS_MS)
        await expect(card).to_contain_text("Acknowledged by phil")
        await wait_for(lambda: acked_by(d, "b7", "phil"), what="b7 acknowledged")

        # ten minutes later (the daemon's clock), the alert page of b8
        offset[0] += 600
        b8 = alert_of(d, "b8")["id"]
        await page.goto(url(d, f"/alerts/{b8}"))
        detail = page.locator("#alert-detail")
        await expect(detail).to_contain_text("History")
        await expect(detail.locator(".alert-age")).to_contain_text("min ago")
        await expect(detail).not_to_contain_text("raised 0 s ago")
        # it offers only the snoozes the server grants (alerts.max_snooze_s = 30 min)
        labels = await detail.locator("button[data-snooze]").all_text_contents()
        assert labels == ["Snooze 15 min", "Snooze 30 min"]
        await detail.locator("button[data-snooze='1800']").click(delay=PRESS_MS)
        await expect(detail.locator(".alert-card")).to_contain_text("Snoozed by phil until")
        assert d.alerts.get(b8)["snoozed_until"] == pytest.approx(clock() + 1800, abs=60)
        await page.fill("#resolve-note", "patient reviewed; treated")
        await detail.locator("#resolve-form button[type=submit]").click(delay=PRESS_MS)
        await expect(detail.locator(".alert-card")).to_contain_text("Resolved by phil")
        await expect(detail).not_to_contain_text("null")
        await expect(page.locator("#ward-clock")).to_contain_text("UTC")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await context.close()
    assert watch.errors == []


async def test_doses_carry_units(make_daemon, publisher, browser):
    from playwright.async_api import expect

    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    make_user(d, "nina", "nurse")
    await admit(publisher, p, "w1", "b1", "P1", now)
    await publisher(f"{p}/w1/b1/vitals", {"ts": now - 5, **NORMAL, "temp_c": 37.0})
    await publisher(
        f"{p}/w1/b1/care", {"ts": now - 60, "type": "medication", "drug": "tocilizumab", "dose": 8}
    )
    await publisher(
        f"{p}/w1/b1/care",
        {
            "ts": now - 30,
            "type": "vasopressor",
            "drug": "norepinephrine",
            "action": "start",
            "dose": 0.05,
        },
    )
    await wait_for(lambda: d.ward.states(), what="bed admitted")
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    watch = Watch(page)
    await login(page, d, "nina", "/patients/P1")
    care = page.locator("#care-list")
    await expect(care).to_contain_text("tocilizumab 8 mg/kg", timeout=15000)
    await expect(care).to_contain_text("start norepinephrine 0.05 mcg/kg/min")
    await page.select_option("#care-type", "medication")
    await page.select_option("#med-drug", "dexamethasone")
    await expect(page.locator("label[for=med-dose]")).to_have_text("Dose (mg, optional)")
    await context.close()
    assert watch.errors == []


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_no_serious_accessibility_violation_on_any_page(
    make_daemon, publisher, browser, device
):
    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    make_user(d, "phil", "physician")
    await admit(publisher, p, "w2", "b7", "P7", now)
    await publisher(f"{p}/w2/b7/vitals", [{"ts": now - 150, **SICK}, {"ts": now - 5, **SICK}])
    await wait_for(lambda: alert_of(d, "b7"), what="an alert")
    alert_id = alert_of(d, "b7")["id"]
    context = await browser.new_context(**(DESKTOP if device == "desktop" else PHONE))
    page = await context.new_page()
    watch = Watch(page)
    found = {}
    await page.goto(url(d, "/login"))
    found["login"] = await axe_violations(page)
    await login(page, d, "phil")
    pages = {
        "ward": ("/", "article.tile"),
        "patient": ("/patients/P7", "#charts .uplot"),
        "alert": (f"/alerts/{alert_id}", "#alert-detail .alert-card"),
        "oncall": ("/oncall", ".alert-card"),
    }
    for name, (path, ready) in pages.items():
        await page.goto(url(d, path))
        await page.locator(ready).first.wait_for(timeout=15000)
        found[name] = await axe_violations(page)
    await context.close()
    assert {k: v for k, v in found.items() if v} == {}
    assert watch.errors == []


async def test_the_header_shows_the_demo_pace_and_how_far_behind(make_daemon, browser):
    from playwright.async_api import expect

    from commands.demo_pace import Pacing
    from devices.clock import SimClock

    d = await make_daemon(clock=SimClock(time.time(), 60))
    d.pacing = Pacing(asked=120, behind_s=42.0)
    make_user(d, "nina", "nurse")
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    watch = Watch(page)
    await login(page, d, "nina")
    pace = page.locator("#ward-clock-pace")
    await expect(pace).to_have_text("demo 60× (slowed from 120×) · daemon 42 s behind")
    d.pacing.behind_s = 0.0
    await expect(pace).to_have_text("demo 60× (slowed from 120×) · keeping up", timeout=40000)
    await expect(page.locator("#ward-clock")).to_contain_text("UTC")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await context.close()
    assert watch.errors == []
