"""Helpers for the browser tests (no tests here): Debian's Chromium through Playwright, a
watch on page errors, logging in, pressing like a person does, and axe-core.

axe-core 4.10.3 (Deque, MPL-2.0, tests/support/axe/LICENSE) is vendored as axe.min.js,
unmodified, from the npm package `axe-core@4.10.3`; nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from commands import screenshots
from tests.support.dashboard import PASSWORD, url

# Chromium's path and launch flags: declared once, with the README's screenshots
CHROMIUM = Path(screenshots.CHROMIUM)
AXE = Path(__file__).parent / "axe" / "axe.min.js"
ARGS = screenshots.ARGS
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
PRESS_MS = 150  # a person's press: the button goes down, and up 150 ms later


class Watch:
    """Every page error and console error of a page, to fail on."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and self.errors.append(f"console: {m.text} ({m.location.get('url')})")
            ),
        )


async def login(page, d, name: str, path: str = "/", password: str = PASSWORD):
    await page.goto(url(d, path))
    await page.wait_for_url(re.compile(r"/login\?next="))
    await page.fill("#username", name)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(url(d, path))


async def press(page, locator) -> None:
    """Press and release on the middle of `locator` with a person's delay between the
    two, with the mouse (the element must stay under it and be the same element)."""
    await locator.scroll_into_view_if_needed()
    box = await locator.bounding_box()
    assert box is not None, "nothing to press"
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await asyncio.sleep(PRESS_MS / 1000)
    await page.mouse.up()


async def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of the given impacts on the page as it is now. The script is
    evaluated through the DevTools protocol, so the page's CSP stays as it is."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    found = await page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                           nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }))"""
    )
    return [v for v in found if v["impact"] in impacts]
