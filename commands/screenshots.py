"""Screenshots of the dashboard for the docs: a ward of eight CAR-T patients fed 36 hours of
readings and care events through the daemon's own ingest path (with a clock that runs
through those hours), then photographed by Debian's Chromium.

    .venv/bin/python -m commands.screenshots [--out docs/screenshots]

Writes ward.png (tablet landscape), patient.png (the sickest patient's view) and
oncall.png (a phone, 390x844). Needs /usr/bin/chromium; uses the embedded MQTT broker.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

from commands.demo import free_port
from dashboard.web import setup as setup_dashboard
from monitor import config
from monitor.daemon import Daemon
from monitor.store.accounts import add_user

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
HOURS = 36
STEP_S = 900
PASSWORD = "screenshot-password"
WARD = "H3"

# bed, patient, days since infusion, scenario
BEDS = [
    ("01", "P-1042", 3, "crs3"),
    ("02", "P-1077", 2, "crs2"),
    ("03", "P-1013", 1, "crs1"),
    ("04", "P-1101", 6, "icans"),
    ("05", "P-1088", 9, "well"),
    ("06", "P-1120", 4, "offline"),
    ("07", "P-1095", 1, "nobp"),
    ("08", "P-1066", 12, "well"),
]
CARE = {  # scenario -> (hours before the end, care event)
    "crs3": [
        (20, {"type": "oxygen", "device": "nasal_cannula", "flow_lpm": 2}),
        (14, {"type": "medication", "drug": "paracetamol"}),
        (9, {"type": "medication", "drug": "tocilizumab"}),
        (7, {"type": "oxygen", "device": "simple_face_mask", "flow_lpm": 6}),
        (5, {"type": "vasopressor", "drug": "norepinephrine", "action": "start", "dose": 0.05}),
        (4, {"type": "medication", "drug": "dexamethasone"}),
    ],
    "crs2": [(6, {"type": "oxygen", "device": "nasal_cannula", "flow_lpm": 3})],
    "icans": [
        (30, {"type": "neuro", "ice_score": 10, "acvpu": "A"}),
        (10, {"type": "neuro", "ice_score": 8}),
        (2, {"type": "neuro", "ice_score": 6, "acvpu": "A"}),
    ],
    "crs1": [],
    "well": [(26, {"type": "neuro", "ice_score": 10})],
    "offline": [],
    "nobp": [],
}


def vitals(scenario: str, h: float, rng: random.Random) -> dict:
    """Readings h hours into the 36: a smooth course with a little noise."""

    def n(x, spread):
        return x + rng.uniform(-spread, spread)

    ramp = 1 / (1 + math.exp(-(h - 20) / 2.5))  # 0 -> 1 around hour 20
    v = {
        "hr": n(76, 4),
        "rr": n(15, 1),
        "spo2": n(97, 0.8),
        "sbp": n(122, 5),
        "dbp": n(74, 4),
        "temp_c": n(36.8, 0.15),
        "acvpu": "A",
    }
    if scenario == "crs3":
        v.update(
            temp_c=n(37 + 2.5 * ramp - (0.8 if h > 29 else 0), 0.15),
            hr=n(80 + 45 * ramp, 4),
            rr=n(15 + 9 * ramp, 1),
            spo2=n(97 - 5 * ramp, 0.6),
            sbp=n(124 - 38 * ramp, 4),
            dbp=n(76 - 26 * ramp, 3),
        )
    elif scenario == "crs2":
        late = max(0.0, min(1.0, (h - 26) / 3))
        v.update(
            temp_c=n(37 + 1.9 * late, 0.15),
            hr=n(82 + 24 * late, 4),
            spo2=n(97 - 4 * late, 0.5),
            rr=n(15 + 6 * late, 1),
        )
    elif scenario == "crs1":
        v.update(temp_c=n(36.9 + 1.7 * max(0.0, min(1.0, (h - 30) / 3)), 0.1), hr=n(84, 4))
    elif scenario == "nobp":
        v.pop("sbp")
        v.pop("dbp")
    v["map"] = round((v["sbp"] + 2 * v["dbp"]) / 3) if "sbp" in v else None
    out = {
        k: (round(x, 1) if k == "temp_c" else round(x)) if isinstance(x, float) else x
        for k, x in v.items()
        if x is not None
    }
    out["spo2"] = min(out["spo2"], 100)
    return out


async def build_ward(tmp: Path):
    offset = [0.0]
    cfg = config.from_dict(
        {
            "mqtt": {
                "host": "127.0.0.1",
                "port": free_port(),
                "embedded": True,
                "protocol": "3.1.1",
                "client_id": "crswatch-screenshots",
            },
            "storage": {"path": str(tmp / "crswatch.db")},
            "http": {"host": "127.0.0.1", "port": 0},
            "state": {"publish_interval_s": 0.02},
        }
    )
    end = time.time()
    start = end - HOURS * 3600
    offset[0] = start - time.time()
    d = Daemon(cfg, clock=lambda: time.time() + offset[0], routes=setup_dashboard)
    await d.start()
    add_user(cfg["storage.path"], "k.osei", "nurse", PASSWORD)
    add_user(cfg["storage.path"], "dr.lind", "physician", PASSWORD)
    p = cfg.prefix

    async def send(bed: str, kind: str, body) -> None:
        item = await d.pipeline.submit(f"{p}/{WARD}/{bed}/{kind}", orjson.dumps(body))
        if item.kind == "reject":
            raise SystemExit(f"screenshots: {kind} at {bed} refused: {item.reason}")

    for bed, pid, day, _ in BEDS:
        await send(
            bed,
            "admit",
            {
                "patient_id": pid,
                "ts": start - 600,
                "age": 30 + int(pid[-2:]) % 45,
                "product": "axicabtagene ciloleucel",
                "indication": "DLBCL",
                "infusion_ts": end - day * 86400 - 3 * 3600,
                "spo2_scale": 1,
            },
        )
    rngs = {bed: random.Random(bed) for bed, *_ in BEDS}
    steps = int(HOURS * 3600 / STEP_S)
    for i in range(steps + 1):
        t = min(start + i * STEP_S, end - 20)
        offset[0] = t + 2 - time.time()
        h = (t - start) / 3600
        sends = []
        for bed, _, _, scenario in BEDS:
            if scenario == "offline" and t > end - 900:
                continue
            sends.append(send(bed, "vitals", {"ts": t, **vitals(scenario, h, rngs[bed])}))
            for before, event in CARE[scenario]:
                if abs((HOURS - before) * 3600 - (t - start)) < STEP_S / 2:
                    sends.append(send(bed, "care", {"ts": t - 60, **event}))
        await asyncio.gather(*sends)
        await asyncio.sleep(0.05)  # the state loop hands each step to the alert engine
    await send("06", "device", "offline")
    offset[0] = 0.0
    await asyncio.sleep(1.5)
    for a in d.alerts.active(WARD):
        if a["bed"] == "02" and a["state"] == "active":
            await d.alerts.ack(a["id"], "k.osei")
    await asyncio.sleep(0.5)
    return d


async def shoot(out: Path) -> None:
    from playwright.async_api import async_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        d = await build_ward(Path(tmp))
        base = f"http://127.0.0.1:{d.http_port}"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                await _page(
                    browser,
                    base,
                    "k.osei",
                    {"width": 1280, "height": 1000},
                    "/",
                    out / "ward.png",
                    full=False,
                )
                await _page(
                    browser,
                    base,
                    "k.osei",
                    {"width": 1280, "height": 900},
                    "/patients/P-1042",
                    out / "patient.png",
                    full=True,
                )
                await _page(
                    browser,
                    base,
                    "dr.lind",
                    {"width": 390, "height": 844},
                    "/oncall",
                    out / "oncall.png",
                    full=False,
                    scale=2,
                )
                await browser.close()
        finally:
            await d.stop()


async def _page(browser, base, user, viewport, path, target, full, scale=1):
    ctx = await browser.new_context(viewport=viewport, device_scale_factor=scale)
    page = await ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    await page.goto(f"{base}/login?next={path}")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")
    await page.wait_for_selector(".tile, .uplot, .alert-card, .empty")
    await page.wait_for_timeout(1200)
    await page.screenshot(path=str(target), full_page=full)
    await ctx.close()
    if errors:
        raise SystemExit(f"screenshots: errors on {path}: {errors}")
    print(f"wrote {target}")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m commands.screenshots")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    asyncio.run(shoot(Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
