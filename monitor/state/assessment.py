"""One bed graded at one moment: what the alert pipeline compares and the state topic shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    vitals: dict[str, dict[str, Any]]  # name -> {"value", "ts", "status"}, as of `at`
    fever_masked: bool

    def key(self) -> tuple:
        """Everything whose change is a change of grade; equal keys need no new alert."""
        return (
            self.crs.grade,
            self.crs.at_least,
            self.icans.grade,
            self.icans.at_least,
            self.news2.band,
            self.news2.band_at_least,
            self.news2.single_parameter_3,
        )
