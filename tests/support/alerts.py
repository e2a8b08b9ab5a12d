"""Helpers for the alert tests (no tests here): typed bed views (alerts/view.py),
a deterministic id factory, and the engine with an injected clock."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from alerts.config import DEFAULT, AlertSettings
from alerts.engine import AlertEngine
from alerts.view import BedView, GradeView, News2View, VitalView

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z; every timeline is in seconds after it


def view(
    crs: int | None = 0,
    crs_at_least: int | None = None,
    icans: int | None = 0,
    icans_at_least: int | None = None,
    news2: int = 0,
    band: str | None = "low",
    sp3: bool = False,
    complete: bool = True,
    vitals: dict[str, str] | None = None,
    device: str | None = "online",
    risk: dict[str, Any] | None = None,
    reasons: list[str] | None = None,
    t: float = 0.0,
    bed: str = "b1",
    ward: str = "w1",
    patient: str = "P1",
    icans_reasons: list[str] | None = None,
) -> BedView:
    """A bed's view at T0 + t. `vitals`: name -> status; a stale or lost vital's last
    reading is placed 120 s or 600 s before t. `reasons`: those starting "NEWS2" are
    NEWS2's, the others CRS's (ICANS's come in `icans_reasons`)."""
    at_least = band if complete else (None if band == "low" else band)
    if crs is not None:
        crs_at_least = crs
    if icans is not None:
        icans_at_least = icans
    vit = {}
    for name, status in (vitals or {}).items():
        age = {"live": 5, "stale": 120, "lost": 600}.get(status)
        vit[name] = VitalView(
            None if age is None else 94, None if age is None else T0 + t - age, status
        )
    reasons = list(reasons or [])
    news2_reasons = tuple(r for r in reasons if r.startswith("NEWS2"))
    crs_reasons = tuple(r for r in reasons if not r.startswith("NEWS2"))
    return BedView(
        ward=ward,
        bed=bed,
        patient_id=patient,
        ts=T0 + t,
        crs=GradeView(crs, crs_at_least, crs_reasons),
        icans=GradeView(icans, icans_at_least, tuple(icans_reasons or ())),
        news2=News2View(news2, band if complete else None, at_least, complete, sp3, news2_reasons),
        vitals=vit,
        device=device,
        risk=risk or {},
        day="D+3",
    )


FEVER = ["fever 38.4 C"]
LOW_FLOW = ["fever 38.4 C", "oxygen by nasal cannula 3 L/min"]
MASK = ["fever 39.1 C", "oxygen by simple face mask 8 L/min"]


class Ward:
    """An engine driven by a test clock: `w.at(t, view)` evaluates at T0 + t."""

    def __init__(self, settings: AlertSettings = DEFAULT):
        counter = itertools.count(1)
        self.engine = AlertEngine(settings, ids=lambda: f"a{next(counter)}")
        self.settings = settings

    def at(self, t: float, v: BedView) -> list:
        return self.engine.evaluate(replace(v, ts=T0 + t), T0 + t)

    def tick(self, t: float) -> list:
        return self.engine.tick(T0 + t)

    def ticks(self, start: float, stop: float, step: float = 5.0) -> list:
        """Every tick from start to stop inclusive, as a daemon would run them."""
        out, t = [], start
        while t <= stop:
            out += self.tick(t)
            t += step
        return out


def brief(decisions: list) -> list[tuple]:
    """(event, alert id, tier, receivers, reason) per decision: what the tests compare."""
    return [(d.event, d.alert["id"], d.alert["tier"], d.receivers, d.reason) for d in decisions]
