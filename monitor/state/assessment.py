"""One bed graded at one moment: what the alert pipeline compares and the state topic shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.view import VitalView
    from monitor.clinical.grade import Grade
    from monitor.clinical.news2 import News2
    from monitor.clinical.snapshot import Snapshot
    from monitor.ingest.messages import Admission


@dataclass(frozen=True, slots=True)
class Assessment:
    at: float  # the moment graded (epoch seconds)
    admission: Admission
    snapshot: Snapshot  # what the scales read
    crs: Grade
    icans: Grade
    news2: News2
    vitals: Mapping[str, VitalView]  # name -> its reading and status as of `at` (shared)
    fever_masked: bool
    notes: tuple[str, ...] = ()  # what the bed state distrusted (artefacts), for the tile
    # Until this time (exclusive) the passing of time alone changes nothing here: the next
    # vital to go stale or lost (BedState.assess). The clock's pass skips the bed until
    # then: a new reading or care event grades it anyway.
    steady_until: float = float("inf")

    def key(self) -> tuple:
        """Everything whose change is a change of grade: a new timeline row (what the alert
        rules read is the bed view's `alert_key()`, monitor/state/view.py)."""
        return (
            self.crs.grade,
            self.crs.at_least,
            self.icans.grade,
            self.icans.at_least,
            self.news2.band,
            self.news2.band_at_least,
            self.news2.single_parameter_3,
        )
