"""Stage 1: a bed's state -> the conditions that call for an alert, each with its tier.

`view` is the bed's typed view (alerts/view.py: each scale with its own reasons, vitals
with epoch times, the device and the forecast). Tiers follow SPEC.md "Alert tiers":

| kind   | tier 1                              | tier 2                          | tier 3        |
|--------|-------------------------------------|---------------------------------|---------------|
| crs    | grade 1                             | grade 2                         | grade 3-4     |
| icans  |                                     | grade 1-2                       | grade 3-4     |
| news2  | total 1-4 (band low)                | low-medium (a 3), medium (5-6)  | high (>= 7)   |
| feed   | a vital stale, or lost while stable | a vital lost while watched      |               |
| device | offline, while stable               | offline, while watched          |               |
| risk   |                                     | forecast p >= risk_threshold    |               |
| signal | a reading not believed (artefact)   |                                 |               |
| broker |                                     | the daemon lost the broker      |               |
| lag    |                                     | the daemon is behind its input  |               |
| store  |                                     |                                 | store failing |
| task:<name> |                                |                                 | a loop failed |
| session |                                    |                                 | session taken |

NEWS2 is tiered on what a CRS grade does not explain: with CRS graded >= 1, the fever and
pulse scores belong to the CRS alert (docs/clinical-decisions.md).

Unknown is never 0: an undecided grade (None) is alerted at its lower bound `*_at_least`,
and an incomplete NEWS2 at `band_at_least` with its partial total. `BedView.undecided()`
names the kinds whose measure is not known, so that a later stage never takes "unknown"
for "gone".

Feeds: one "feed" alert per bed names every dead feed (systolic, diastolic and mean
pressure are one cuff, "bp"). Oxygen flow and FiO2 are not watched: they stop when oxygen
is stopped, which is care, not a dead sensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .view import BedView, GradeView, News2View, VitalView

if TYPE_CHECKING:
    from .config import AlertSettings

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
FEED_TIER = {"stale": 1, "lost": 2}  # the level of a dead feed
RISK_EXIT_MARGIN = 0.2  # an active risk alert holds until p < risk_threshold - this
EXPLAINED_BY_CRS = ("temp", "hr")  # NEWS2 parameters a CRS grade already alerts for
EXPLAINED_LABELS = {"temp": "temperature", "hr": "pulse"}


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


def conditions(
    view: BedView, settings: AlertSettings, holding: frozenset[str] = frozenset()
) -> list[Condition]:
    """Every condition of this bed now (at most one per kind). `holding`: the kinds with
    an active alert on this bed (their exit thresholds apply: risk)."""
    found: list[Condition | None] = [
        _graded("crs", "CRS", view.crs, lambda g: min(g, 3)),
        _graded("icans", "ICANS", view.icans, lambda g: 2 if g <= 2 else 3),
        _news2(view.news2, view.crs),
        _feeds(view, settings),
        _device(view),
        _risk(view.risk, settings.risk_threshold, "risk" in holding),
        _signal(view.notes),
    ]
    ward, bed = view.ward, view.bed
    return [Condition(c.kind, c.tier, c.reason, c.detail, ward, bed) for c in found if c]


def system_conditions(
    broker_connected: bool,
    store_ok: bool,
    store_error: str = "",
    faults: Sequence[tuple[str, str]] = (),
    behind_s: float = 0.0,
    behind_limit_s: float = 300.0,
) -> list[Condition]:
    """The daemon's own conditions, on the pseudo-bed (SYSTEM, SYSTEM). `faults` are
    (kind, reason) of the daemon's other failures (a task that raised, its MQTT session
    taken over): each a tier-3 condition of its own kind, its cause in the reason.
    `behind_s`: how far the newest reading the daemon has taken in (any bed) lags its
    clock; beyond `behind_limit_s` the daemon is behind its input (or was down): that is
    its own alert, and it mutes every bed's feed and device alerts (inhibit.py), never a
    patient's."""
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
    if broker_connected and behind_s > behind_limit_s:
        out.append(
            Condition(
                "lag",
                2,
                f"the daemon is {_age(behind_s)} behind its input (or was down): "
                "feeds are not judged until it catches up",
                {"behind_s": round(behind_s)},
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
    if kind == "feed":
        return "lost" if level >= 2 else "stale"
    return f"level {level}"


def _graded(
    kind: str, label: str, g: GradeView | None, tier_of: Callable[[int], int]
) -> Condition | None:
    if g is None:
        return None
    level = g.grade if g.grade is not None else g.at_least
    if not level:
        return None
    head = f"{label} grade {level}" if g.grade is not None else f"{label} grade at least {level}"
    text = head + (": " + ", ".join(g.reasons) if g.reasons else "")
    detail = {"grade": g.grade, "at_least": g.at_least, "level": level}
    return Condition(kind, tier_of(level), text, detail)


def _news2(n: News2View | None, crs: GradeView | None = None) -> Condition | None:
    """NEWS2's tier, for what a CRS grade does not already explain: once CRS is graded
    (>= 1), its fever and tachycardia are the CRS alert's, and NEWS2 pages for the rest
    (breathing, oxygen, pressure, consciousness). docs/clinical-decisions.md."""
    if n is None:
        return None
    crs_level = (crs.grade if crs.grade is not None else crs.at_least) if crs else None
    explained = {k: n.scores.get(k, 0) for k in EXPLAINED_BY_CRS} if crs_level else {}
    total = n.total - sum(explained.values())
    threes = any(v == 3 for k, v in n.scores.items() if k not in explained)
    band = n.band_at_least
    if explained and band is not None:
        band = BANDS[_band_index(total, threes)]
    if band in ("high", "medium", "low-medium"):
        tier = 3 if band == "high" else 2
    elif n.total >= 1:
        tier, band = 1, "low"  # incomplete with a partial total 1-4 is at least "low" too
    else:
        return None
    text = "; ".join(n.reasons) or f"NEWS2 {n.total} ({n.band_at_least})"
    if explained and sum(explained.values()):
        labels = " and ".join(EXPLAINED_LABELS[k] for k, v in explained.items() if v)
        text += (
            f"; {sum(explained.values())} of it from {labels}, explained by CRS grade "
            f"{crs_level}: {total} beyond it"
        )
    return Condition(
        "news2",
        tier,
        text,
        {
            "total": total,
            "news2_total": n.total,
            "band": n.band,
            "band_at_least": band,
            "single_parameter_3": n.single_parameter_3,
            "complete": n.complete,
            "explained_by_crs": sum(explained.values()),
            "level": BANDS.index(band),
        },
    )


def _band_index(total: int, single_3: bool) -> int:
    if total >= 7:
        return 3
    if total >= 5:
        return 2
    return 1 if single_3 else 0


def _feeds(view: BedView, settings: AlertSettings) -> Condition | None:
    """One alert per bed for its dead feeds, at the worst of them: stale -> tier 1; lost ->
    tier 2 while the patient needs watching (CRS >= 2, ICANS >= 1 or NEWS2 medium or more),
    else tier 1 (a stable patient off the monitor for a walk is a note, not a page).

    A "missing" vital (configured but never reported in this admission) is not an alert: a
    bed without a cuff or a ward without ACVPU entry would otherwise alert on every bed,
    all day, and hide the alerts that matter. Its unknown value is not hidden either: the
    scales leave the grade undecided and NEWS2 incomplete. A vital that did report and then
    stopped goes stale, then lost, and that is alerted.
    """
    worst: dict[str, tuple[int, str, VitalView]] = {}
    for name, v in view.vitals.items():
        feed = FEEDS.get(name)
        if feed is None or v.status not in FEED_TIER:
            continue
        if feed not in worst or FEED_TIER[v.status] > worst[feed][0]:
            worst[feed] = (FEED_TIER[v.status], name, v)
    if not worst:
        return None
    parts = []
    for feed, (level, _, v) in sorted(worst.items(), key=lambda x: (-x[1][0], x[0])):
        status = "lost" if level == 2 else "stale"
        since = ""
        if v.ts is not None:
            age = _age((view.ts if view.ts is not None else v.ts) - v.ts)
            since = f" (no reading for {age}, last {v.value} at {settings.clock(v.ts)})"
        parts.append(f"{FEED_LABELS[feed]} {status}{since}")
    level = max(x[0] for x in worst.values())
    tier = 2 if level == 2 and _needs_watching(view) else 1
    return Condition(
        "feed",
        tier,
        "feeds: " + "; ".join(parts),
        {
            "feeds": {f: ("lost" if x[0] == 2 else "stale") for f, x in sorted(worst.items())},
            "level": level,
        },
    )


def _needs_watching(view: BedView) -> bool:
    def at_least(g: GradeView | None) -> int:
        return 0 if g is None else (g.grade if g.grade is not None else g.at_least) or 0

    band = view.news2.band_at_least if view.news2 else None
    return at_least(view.crs) >= 2 or at_least(view.icans) >= 1 or band in ("medium", "high")


def _device(view: BedView) -> Condition | None:
    """The bedside device offline: urgent while the patient needs watching (as a lost
    feed), else a tier-1 note (a stable patient's NEWS2 asks for observations 4-12
    hourly: a monitor off for a while is for the nurse's round, not a page)."""
    if view.device != "offline":
        return None  # online, or not known yet (None): the feeds' own states tell the rest
    tier = 2 if _needs_watching(view) else 1
    return Condition(
        "device", tier, "bedside device offline: no readings can arrive", {"device": "offline"}
    )


def _risk(risk: Mapping[str, Any], threshold: float, holding: bool) -> Condition | None:
    """Enter at `threshold`; an active risk alert holds down to threshold - RISK_EXIT_MARGIN
    (no flapping around the threshold). `p` is calibrated on the patient's cohort
    (forecast/calibration.py). The forecast's episode gate (forecast/policy.py: once per risk
    episode, again only on a material rise, never after a CRS grade 2) must agree: a risk
    with `alert` False raises nothing (it is still shown on the tile)."""
    p = risk.get("p")
    floor = threshold - RISK_EXIT_MARGIN if holding else threshold
    if p is None or p < floor or not risk.get("alert", True):
        return None
    why = ", ".join(risk.get("explanation") or ())
    cohort = (
        f" for a {risk['cohort']} patient" if risk.get("cohort") not in (None, "unknown") else ""
    )
    text = f"forecast risk {p:.2f}{cohort} (threshold {threshold:.2f})" + (
        f": {why}" if why else ""
    )
    return Condition(
        "risk",
        2,
        text,
        {
            "p": p,
            "threshold": threshold,
            "explanation": list(risk.get("explanation") or ()),
            "episode": risk.get("alert_reason"),
        },
    )


def _signal(notes: tuple[str, ...]) -> Condition | None:
    """Readings the bed state did not believe: a tier-1 note on the tile ("check the
    probe"), never a page."""
    if not notes:
        return None
    return Condition("signal", 1, "; ".join(notes), {"notes": list(notes)})


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
