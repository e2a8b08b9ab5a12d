"""A bed's assessment as the typed view the alert rules read, and that view on the wire.

`bed_view` builds the view (alerts/view.py) from an Assessment; `to_wire` is the one place
that makes SPEC.md's retained `{p}/{ward}/{bed}/state` payload (times as ISO 8601 UTC), for
MQTT, the dashboard and `replay --states`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from alerts.view import BedView, GradeView, News2View
from monitor.clock import iso
from monitor.state.assessment import Assessment


def day_label(infusion_ts: float | None, t: float) -> str | None:
    """Days since the CAR-T infusion as "D+n" (infusion day D+0; "D-1" the day before),
    counted in elapsed 24-hour periods (the ward's calendar zone is not known here)."""
    if infusion_ts is None:
        return None
    n = math.floor((t - infusion_ts) / 86400.0)
    return f"D+{n}" if n >= 0 else f"D{n}"


def bed_view(
    ward: str,
    bed: str,
    a: Assessment,
    device: str | None = None,
    risk: Mapping[str, Any] | None = None,
) -> BedView:
    n = a.news2
    return BedView(
        ward=ward,
        bed=bed,
        patient_id=a.admission.patient_id,
        ts=a.at,
        crs=GradeView(a.crs.grade, a.crs.at_least, a.crs.reasons),
        icans=GradeView(a.icans.grade, a.icans.at_least, a.icans.reasons),
        news2=News2View(
            n.total, n.band, n.band_at_least, n.complete, n.single_parameter_3, n.reasons, n.scores
        ),
        vitals=a.vitals,  # VitalViews already
        device=device,
        risk=dict(risk or {}),
        fever_masked=a.fever_masked,
        day=day_label(a.admission.infusion_ts, a.at),
        notes=a.notes,
    )


def empty_view(ward: str, bed: str) -> BedView:
    """A bed after its patient left."""
    return BedView(ward, bed, None, None)


def to_wire(v: BedView) -> dict[str, Any]:
    """SPEC.md's state payload of a view; an empty bed's payload once discharged."""
    if v.patient_id is None or v.crs is None or v.icans is None or v.news2 is None:
        return {
            "ward": v.ward,
            "bed": v.bed,
            "patient_id": None,
            "ts": None,
            "crs_grade": None,
            "icans_grade": None,
            "news2": None,
            "risk": {},
            "vitals": {},
            "device": None,
        }
    n = v.news2
    return {
        "ward": v.ward,
        "bed": v.bed,
        "patient_id": v.patient_id,
        "ts": iso(v.ts),
        "crs_grade": v.crs.grade,
        "crs_at_least": v.crs.at_least,
        "icans_grade": v.icans.grade,
        "icans_at_least": v.icans.at_least,
        "news2": {
            "total": n.total,
            "band": n.band,
            "band_at_least": n.band_at_least,
            "complete": n.complete,
            "single_parameter_3": n.single_parameter_3,
        },
        "risk": dict(v.risk),
        "vitals": {
            name: {"value": x.value, "ts": iso(x.ts), "status": x.status}
            for name, x in v.vitals.items()
        },
        "reasons": [*v.crs.reasons, *v.icans.reasons, *n.reasons],
        "fever_masked": v.fever_masked,
        "day": v.day,
        "device": v.device,
    }
