"""Screenshots of the dashboard for the README, taken from the demo itself: `./run demo`'s
own composition (embedded broker, the simulated ward at 120x with its pacer, the daemon and
the dashboard) in a scratch directory, run until the ward shows what a demo shows after a
few minutes (an urgent or emergency alert, CRS on several beds), then photographed by
Debian's Chromium as the demo's nurse and physician.

    .venv/bin/python -m commands.screenshots [--out docs/screenshots] [--minutes 12]

Writes ward.png (desktop), patient.png (the sickest patient's view), alert.png (its worst
alert) and oncall.png (a phone, 390x844). Needs /usr/bin/chromium. Prints what it waits
for; gives up with exit status 1 when the ward shows nothing within --minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from commands.demo import DEMO_USERS, free_port, log_to_file, start_demo, stop_demo
from dashboard.core import DASH

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORDS = {name: password for name, _, password in DEMO_USERS}


def ready(daemon) -> bool:
    """The ward shows what the demo is for: an urgent or emergency alert, and CRS on
    several beds (fever in the first simulated hours after CAR-T, as the demo has it)."""
    urgent = any((a.get("tier") or 0) >= 2 for a in daemon.alerts.active())
    crs = [s for s in daemon.ward.states() if s.get("crs_grade") or s.get("crs_at_least")]
    return urgent and len(crs) >= 2


async def shoot(out: Path, minutes: float, speed: float) -> int:
    from playwright.async_api import async_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log_to_file(Path(tmp) / "demo.log")
        demo = await start_demo(
            str(Path(tmp) / "crswatch.db"), 12, speed, 1, free_port(), free_port()
        )
        d = demo.daemon
        base = f"http://127.0.0.1:{d.http_port}"
        try:
            deadline = time.monotonic() + minutes * 60
            while not ready(d):
                if time.monotonic() > deadline:
                    print(f"screenshots: nothing to show after {minutes:g} min", file=sys.stderr)
                    return 1
                print(
                    f"\rwaiting for the ward: {d.clock() - demo.clock.start_sim_ts:.0f} "
                    f"simulated s, {demo.clock.speed:.0f}x",
                    end="",
                    flush=True,
                )
                await asyncio.sleep(2)
            print()
            worst = d.http.app[DASH].beds()[0]  # worst first, as the ward page orders them
            alert = max(worst["alerts"], key=lambda a: a.get("tier") or 0, default=None)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                desktop = {"viewport": {"width": 1280, "height": 1000}}
                phone = {
                    "viewport": {"width": 390, "height": 844},
                    "device_scale_factor": 2,
                    "is_mobile": True,
                    "has_touch": True,
                }
                await _page(browser, base, "nurse", desktop, "/", out / "ward.png")
                await _page(
                    browser,
                    base,
                    "nurse",
                    desktop,
                    f"/patients/{worst['patient_id']}",
                    out / "patient.png",
                    full=True,
                )
                if alert is not None:
                    await _page(
                        browser,
                        base,
                        "doctor",
                        desktop,
                        f"/alerts/{alert['id']}",
                        out / "alert.png",
                    )
                await _page(browser, base, "doctor", phone, "/oncall", out / "oncall.png")
                await browser.close()
        finally:
            await stop_demo(demo)
    return 0


async def _page(browser, base, user, context, path, target, full=False):
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    await page.goto(f"{base}/login?next={path}")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORDS[user])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")
    await page.wait_for_selector(".tile, .uplot, .alert-card, .empty")
    await page.wait_for_timeout(1500)
    await page.screenshot(path=str(target), full_page=full)
    await ctx.close()
    if errors:
        raise SystemExit(f"screenshots: errors on {path}: {errors}")
    print(f"wrote {target}")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m commands.screenshots")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--minutes", type=float, default=12.0, help="longest wait (wall minutes)")
    ap.add_argument("--speed", type=float, default=120.0, help="as ./run demo (default 120)")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    return asyncio.run(shoot(Path(args.out), args.minutes, args.speed))


if __name__ == "__main__":
    sys.exit(main())
