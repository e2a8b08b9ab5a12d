"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a real
daemon and broker: log in, watch a tile change live, acknowledge an alert, enter care
events, see the charts, use the on-call view on a phone. Any JavaScript error, console
error or CSP violation fails the test."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import wait_for
from tests.support.browser import CHROMIUM, Watch, login
from tests.support.dashboard import PASSWORD, SICK, admit, make_user, url
from tests.support.db import query

NORMAL = {"hr": 78, "rr": 14, "spo2": 97, "sbp": 124, "dbp": 76, "map": 92, "acvpu": "A"}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (./run test installs it)"
)


async def test_ward_live_tiles_ack_care_entry_and_charts(make_daemon, publisher, browser, tmp_path):
    from playwright.async_api import expect

    d = await make_daemon()
    p, db, now = d.cfg.prefix, d.cfg["storage.path"], time.time()
    make_user(d, "nina", "nurse")
    await admit(publisher, p, "w1", "b1", "P1", now)
    await admit(publisher, p, "w1", "b2", "P2", now)
    await publisher(
        f"{p}/w1/b1/vitals",
        [{"ts": now - 1800 + 60 * i, **NORMAL, "temp_c": 37.0 + 0.03 * i} for i in range(30)],
    )
    await publisher(f"{p}/w1/b2/vitals", {"ts": now - 60, **NORMAL, "temp_c": 36.9})
    await wait_for(lambda: len(d.ward.states()) == 2, what="two beds")

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    watch = Watch(page)
    await login(page, d, "nina")
    tile = page.locator("article.tile[data-bed=b1]")
    await expect(tile).to_be_visible()
    await expect(page.locator("article.tile")).to_have_count(2)
    await expect(tile).to_contain_text("P1")
    await expect(tile).to_contain_text("D+2")

    # a reading over MQTT shows without a reload; its fever (CRS grade 1, tier 1) is a note
    # on the tile, not an alert box (issue 18)
    await publisher(f"{p}/w1/b1/vitals", {"ts": time.time() - 1, "temp_c": 39.2})
    await expect(tile.locator(".vital-value").first).to_have_text("39.2", timeout=15000)
    await expect(tile.locator(".grade").first).to_contain_text("1")  # CRS grade 1
    await expect(page.locator("article.tile").first).to_have_attribute("data-bed", "b1")
    await expect(tile.locator(".tile-note").first).to_contain_text("CRS grade 1", timeout=15000)
    await expect(tile.locator(".tile-alert")).to_have_count(0)
    await page.screenshot(path=str(tmp_path / "ward.png"))

    # the patient view: charts drawn, a care event and an ICE score entered
    await tile.locator("a.tile-patient").click()
    await page.wait_for_url("**/patients/P1")
    await expect(page.locator("#charts .uplot canvas")).to_have_count(6, timeout=15000)
    assert await page.locator("#charts .uplot canvas").first.evaluate(
        "c => c.width > 0 && c.height > 0"
    )
    await page.select_option("#care-type", "oxygen")
    await page.select_option("#o2-device", "nasal_cannula")
    await page.fill("#o2-flow", "2")
    await page.click("#care-form button[type=submit]")
    await expect(page.locator("#notice")).to_contain_text("Care event recorded")
    await wait_for(
        lambda: query(db, "SELECT type, data FROM care_events"), what="care event stored"
    )
    assert query(db, "SELECT patient_id, type, data FROM care_events") == [
        ("P1", "oxygen", '{"device":"nasal_cannula","flow_lpm":2.0}')
    ]
    await expect(page.locator("#care-list")).to_contain_text("nasal cannula, 2 L/min")
    await page.fill("#ice-score", "8")
    await page.click("#neuro-form button[type=submit]")
    await expect(page.locator("#notice")).to_contain_text("Neuro assessment recorded")
    await wait_for(
        lambda: query(db, "SELECT data FROM care_events WHERE type='neuro'"),
        what="ICE score stored",
    )
    await expect(page.locator("#care-list")).to_contain_text("ICE 8/10")
    # the nurse sees no override form
    await expect(page.locator("#override-panel")).to_be_hidden()
    await page.screenshot(path=str(tmp_path / "patient.png"), full_page=True)
    # back on the ward: oxygen with the fever is CRS grade 2, an urgent alert to acknowledge
    await page.goto(url(d, "/"))
    ack = tile.locator("button[data-ack]")
    await expect(ack).to_be_visible(timeout=15000)
    await ack.click()
    await expect(tile.locator(".tile-alert")).to_contain_text("Acknowledged by nina", timeout=15000)
    await context.close()
    assert watch.errors == []


async def test_oncall_view_on_a_phone_and_the_alert_link(make_daemon, publisher, browser):
    from playwright.async_api import expect

    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    make_user(d, "phil", "physician")
    await admit(publisher, p, "w2", "b7", "P7", now)
    await publisher(f"{p}/w2/b7/vitals", [{"ts": now - 150, **SICK}, {"ts": now - 5, **SICK}])
    await wait_for(lambda: [a for a in d.alerts.active() if a["tier"] == 3], what="a tier-3 alert")
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = await context.new_page()
    watch = Watch(page)
    await login(page, d, "phil")
    await page.goto(url(d, "/oncall"))
    card = page.locator(".alert-card.sev-3").first
    await expect(card).to_be_visible(timeout=15000)
    await expect(card).to_contain_text("P7")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await card.locator("a", has_text="Open").click()
    await page.wait_for_url("**/alerts/*")
    alert_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#alert-detail")).to_contain_text("History")
    await page.locator("#alert-detail button[data-ack]").click()
    await expect(page.locator("#alert-detail")).to_contain_text(
        "Acknowledged by phil", timeout=15000
    )
    assert d.alerts.get(alert_id)["acked_by"] == "phil"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    # the override form is there for a physician
    await page.goto(url(d, "/patients/P7"))
    await expect(page.locator("#override-panel")).to_be_visible()
    await page.select_option("#ov-grade", "3")
    await page.fill("#ov-reason", "hypotension needing vasopressor in ICU")
    await page.click("#override-form button[type=submit]")
    await expect(page.locator("#grade-list")).to_contain_text("CRS 3 set by phil")
    await context.close()
    assert watch.errors == []


async def test_connection_lost_banner_and_reconnect(make_daemon, browser, publisher):
    from playwright.async_api import expect

    d = await make_daemon()
    make_user(d, "nina", "nurse")
    context = await browser.new_context()
    page = await context.new_page()
    await login(page, d, "nina")
    await expect(page.locator("#tiles")).to_contain_text("No admitted beds")
    banner = page.locator("#conn-banner")
    await expect(banner).to_be_hidden()
    from dashboard.core import DASH
    from dashboard.ws import close_all

    await close_all(d.http.app)  # the server drops every WebSocket
    await expect(banner).to_be_visible(timeout=10000)
    await expect(banner).to_contain_text("Connection lost")
    await expect(banner).to_be_hidden(timeout=15000)  # reconnected by itself
    assert d.http.app[DASH].sockets
    await admit(publisher, d.cfg.prefix, "w1", "b3", "P3", time.time())
    await expect(page.locator("article.tile[data-bed=b3]")).to_be_visible(timeout=15000)
    await context.close()


async def test_an_admin_disables_an_account_from_the_accounts_page(make_daemon, browser):
    """Issue 15: accounts can be disabled from the admin page; that user's sessions end and
    its open pages close at once."""
    from playwright.async_api import expect

    d = await make_daemon()
    make_user(d, "ada", "admin")
    make_user(d, "nina", "nurse")
    nurse_ctx, admin_ctx = await browser.new_context(), await browser.new_context()
    try:
        nurse = await nurse_ctx.new_page()
        await login(nurse, d, "nina")
        admin = await admin_ctx.new_page()
        watch = Watch(admin)
        await admin.goto(url(d, "/users"))
        await admin.wait_for_url(re.compile(r"/login\?next="))
        await admin.fill("#username", "ada")
        await admin.fill("#password", PASSWORD)
        await admin.click("button[type=submit]")
        await admin.wait_for_url(url(d, "/users"))
        await wait_for(lambda: any(u.name == "nina" for u in _sockets(d)), what="live page")
        row = admin.locator("#users-table tbody tr", has_text="nina")
        await row.get_by_role("button", name="Disable").click()
        await expect(row).to_contain_text("disabled")
        await wait_for(lambda: not any(u.name == "nina" for u in _sockets(d)), what="page closed")
        answer = await nurse.request.get(url(d, "/api/me"))
        assert answer.status == 401
        assert query(
            d.cfg["storage.path"], "SELECT actor FROM audit WHERE name='user.disabled'"
        ) == [("ada",)]
        assert watch.errors == []
    finally:
        await nurse_ctx.close()
        await admin_ctx.close()


def _sockets(d):
    from dashboard.core import DASH

    return list(d.http.app[DASH].sockets.values())
