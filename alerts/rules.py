"""Stage 1: a bed's state -> the conditions that call for an alert, each with its tier.

`view` is the state dict `monitor.state.bedstate.to_state()` produces, plus `device` ("online",
"offline" or None) and `risk` ({} or {"p", "explanation"}) added by the daemon. Tiers follow
SPEC.md "Alert tiers":

| kind        | tier 1                     | tier 2                          | tier 3        |
|-------------|----------------------------|---------------------------------|---------------|
| crs         | grade 1                    | grade 2                         | grade 3-4     |
| icans       |                            | grade 1-2                       | grade 3-4     |
| news2       | total 1-4 (band low)       | low-medium (a 3), medium (5-6)  | high (>= 7)   |
| feed:<v>    | a vital stale              | a vital lost                    |               |
| device      |                            | the bedside device offline      |               |
| risk        |                            | forecast p >= risk_threshold    |               |
| broker      |                            | the daemon lost the broker      |               |
| store       |                            |                                 | store failing |
| task:<name> |                            |                                 | a loop failed |
| session     |                            |                                 | session taken |

Unknown is never 0: an undecided grade (None) is alerted at its lower bound `*_at_least`,
and an incomplete NEWS2 at `band_at_least` with its partial total. `undecided()` names the
kinds whose measure is not known, so that a later stage never takes "unknown" for "gone".

Feeds: systolic, diastolic and mean pressure come from one cuff and make one kind,
"feed:bp" (one alert per dead cuff, not three). Oxygen flow and FiO2 are not watched: they
stop when oxygen is stopped, which is care, not a dead sensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SYSTEM = "_daemon"  # the pseudo-bed (ward and bed) of the daemon's own conditions
BANDS = ("low", "low-medium", "medium", "high")
FEEDS = {
    "hr": "hr",
    "rr": "rr",
    "spo2": "spo2",
    "sbp": "bp",
    "dbp": "bp",
    "map": "bp",
    "temp_c": "temp_c",
    "acvpu": "acvpu",
}
FEED_LABELS = {
    "hr": "heart rate",
    "rr": "respiration rate",
    "spo2": "SpO2",
    "bp": "blood pressure",
    "temp_c": "temperature",
    "acvpu": "consciousness (ACVPU)",
}
FEED_TIER = {"stale": 1, "lost": 2}
# ICANS reasons, to split the state's merged `reasons` when the view has no `icans_reasons`.
ICANS_MARKS = (
    "ICE score",
    "consciousness (ACVPU)",
    "alert (A)",
    "new confusion (C)",
    "wakes to voice",
    "wakes only to",
    "unarousable",
    "seizure",
    "deep focal motor weakness",
    "cerebral oedema",
)


@dataclass(frozen=True, slots=True)
class Condition:
    """Something about a bed that calls for an alert of `tier`, and why.

    `detail["level"]` orders conditions of one kind within a tier (a grade, a NEWS2 band
    index): a higher level is a worsening. `ward` and `bed` let inhibition rules compare beds.
    """

    kind: str
    tier: int
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    ward: str = ""
    bed: str = ""

    @property
    def level(self) -> int:
        return int(self.detail.get("level", 0))


def conditions(view: dict[str, Any], settings: Any) -> list[Condition]:
    """Every condition of this bed now (at most one per kind)."""
    crs_r, icans_r, news2_r = split_reasons(view)
    found = [
        _graded(
            "crs",
            "CRS",
            view.get("crs_grade"),
            view.get("crs_at_least"),
            crs_r,
            lambda g: min(g, 3),
        ),
        _graded(
            "icans",
            "ICANS",
            view.get("icans_grade"),
            view.get("icans_at_least"),
            icans_r,
            lambda g: 2 if g <= 2 else 3,
        ),
        _news2(view.get("news2") or {}, news2_r),
        *_feeds(view, settings),
        _device(view.get("device")),
        _risk(view.get("risk") or {}, settings.risk_threshold),
    ]
    ward, bed = view["ward"], view["bed"]
    return [Condition(c.kind, c.tier, c.reason, c.detail, ward, bed) for c in found if c]


def undecided(view: dict[str, Any]) -> frozenset[str]:
    """Kinds whose measure is unknown now: an alert of such a kind is kept, not resolved."""
    out = set()
    if view.get("crs_grade") is None:
        out.add("crs")
    if view.get("icans_grade") is None:
        out.add("icans")
    if not (view.get("news2") or {}).get("complete", False):
        out.add("news2")
    return frozenset(out)


def system_conditions(
    broker_connected: bool,
    store_ok: bool,
    store_error: str = "",
    faults: Sequence[tuple[str, str]] = (),
) -> list[Condition]:
    """The daemon's own conditions, on the pseudo-bed (SYSTEM, SYSTEM). `faults` are
    (kind, reason) of the daemon's other failures (a task that raised, its MQTT session
    taken over): each a tier-3 condition of its own kind, its cause in the reason."""
    out = [Condition(kind, 3, reason, {}, SYSTEM, SYSTEM) for kind, reason in faults]
    if not store_ok:
        why = f": {store_error}" if store_error else ""
        out.append(
            Condition(
                "store",
                3,
                f"the daemon cannot write its store{why}; readings are not being saved",
                {"error": store_error},
                SYSTEM,
                SYSTEM,
            )
        )
    if not broker_connected:
        out.append(
            Condition(
                "broker",
                2,
                "the daemon lost the MQTT broker: no new readings from any bed",
                {},
                SYSTEM,
                SYSTEM,
            )
        )
    return out


def level_label(kind: str, level: int) -> str:
    """How a level reads in a reason: 'grade 3', 'band medium', 'lost'."""
    if kind in ("crs", "icans"):
        return f"grade {level}"
    if kind == "news2":
        return f"band {BANDS[min(level, 3)]}"
    if kind.startswith("feed:"):
        return "lost" if level >= 2 else "stale"
    return f"level {level}"


def split_reasons(view: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(CRS, ICANS, NEWS2) reasons: from `crs_reasons`, `icans_reasons` and `news2_reasons`
    when the daemon adds them, else split from the merged `reasons` by their wording."""
    if "crs_reasons" in view:
        return (
            list(view["crs_reasons"]),
            list(view.get("icans_reasons", ())),
            list(view.get("news2_reasons", ())),
        )
    crs, icans, news = [], [], []
    for r in view.get("reasons") or ():
        if r.startswith("NEWS2"):
            news.append(r)
        elif any(mark in r for mark in ICANS_MARKS):
            icans.append(r)
        else:
            crs.append(r)
    return crs, icans, news


def _graded(
    kind: str, label: str, grade: int | None, at_least: int | None, reasons: list[str], tier_of: Any
) -> Condition | None:
    g = grade if grade is not None else at_least
    if not g:
        return None
    head = f"{label} grade {g}" if grade is not None else f"{label} grade at least {g}"
    text = head + (": " + ", ".join(reasons) if reasons else "")
    return Condition(kind, tier_of(g), text, {"grade": grade, "at_least": at_least, "level": g})


def _news2(n: dict[str, Any], reasons: list[str]) -> Condition | None:
    total, band = n.get("total") or 0, n.get("band_at_least")
    if band in ("high", "medium", "low-medium"):
        tier = 3 if band == "high" else 2
    elif total >= 1:
        tier, band = 1, "low"  # incomplete with a partial total 1-4 is at least "low" too
    else:
        return None
    text = "; ".join(reasons) or f"NEWS2 {total} ({band})"
    return Condition(
        "news2",
        tier,
        text,
        {
            "total": total,
            "band": n.get("band"),
            "band_at_least": band,
            "single_parameter_3": bool(n.get("single_parameter_3")),
            "complete": bool(n.get("complete")),
            "level": BANDS.index(band),
        },
    )


def _feeds(view: dict[str, Any], settings: Any) -> list[Condition]:
    """Stale -> tier 1, lost -> tier 2, the worst vital of each feed.

    A "missing" vital (configured but never reported in this admission) is not an alert: a
    bed without a cuff or a ward without ACVPU entry would otherwise alert on every bed,
    all day, and hide the alerts that matter. Its unknown value is not hidden either: the
    scales leave the grade undecided and NEWS2 incomplete. A vital that did report and then
    stopped goes stale, then lost, and that is alerted.
    """
    worst: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for name, v in (view.get("vitals") or {}).items():
        feed, status = FEEDS.get(name), v.get("status")
        if feed is None or status not in FEED_TIER:
            continue
        if feed not in worst or FEED_TIER[status] > worst[feed][0]:
            worst[feed] = (FEED_TIER[status], name, v)
    out = []
    for feed, (tier, name, v) in sorted(worst.items()):
        status = "lost" if tier == 2 else "stale"
        last = _epoch(v.get("ts"))
        since = ""
        if last is not None:
            age = _age((_epoch(view.get("ts")) or last) - last)
            since = f": no reading for {age} (last {v.get('value')} at {settings.clock(last)})"
        out.append(
            Condition(
                f"feed:{feed}",
                tier,
                f"{FEED_LABELS[feed]} feed {status}{since}",
                {
                    "vital": name,
                    "status": status,
                    "value": v.get("value"),
                    "ts": v.get("ts"),
                    "level": tier,
                },
            )
        )
    return out


def _device(device: str | None) -> Condition | None:
    if device != "offline":
        return None  # online, or not known yet (None): the feeds' own states tell the rest
    return Condition(
        "device", 2, "bedside device offline: no readings can arrive", {"device": device}
    )


def _risk(risk: dict[str, Any], threshold: float) -> Condition | None:
    p = risk.get("p")
    if p is None or p < threshold:
        return None
    why = ", ".join(risk.get("explanation") or ())
    text = f"forecast risk {p:.2f} (threshold {threshold:.2f})" + (f": {why}" if why else "")
    return Condition(
        "risk",
        2,
        text,
        {"p": p, "threshold": threshold, "explanation": list(risk.get("explanation") or ())},
    )


def _epoch(ts: Any) -> float | None:
    if ts is None:
        return None
    if isinstance(ts, int | float):
        return float(ts)
    return datetime.fromisoformat(str(ts)).timestamp()


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
