"""Which patient occupies which bed: the daemon's in-memory registry, rebuilt from SQLite."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.ingest.items import AdmissionRecord
from monitor.ingest.messages import Admission


def admission_id(ward: str, bed: str, a: Admission) -> str:
    """Stable, so a redelivered admit message maps to the same admission."""
    return f"{ward}/{bed}/{a.patient_id}/{a.ts:.3f}"


class Admissions:
    def __init__(self) -> None:
        self.active: dict[tuple[str, str], AdmissionRecord] = {}
        # The last discharge of each bed, so a redelivered discharge is a duplicate.
        self.last_discharged: dict[tuple[str, str], AdmissionRecord] = {}

    def load(self, rows: Iterable[tuple]) -> None:
        """Every stored admission (monitor/store/reads.py admission_rows), oldest first."""
        for r in rows:
            a = Admission(r[3], r[4], r[5], r[6], r[7], r[8], r[9] or 1)
            rec = AdmissionRecord(r[0], r[1], r[2], a, r[10])
            key = (rec.ward, rec.bed)
            if rec.discharged_ts is None:
                self.active[key] = rec
            else:
                self.last_discharged[key] = rec

    def get(self, ward: str, bed: str) -> AdmissionRecord | None:
        return self.active.get((ward, bed))

    def admit(self, rec: AdmissionRecord) -> None:
        self.active[(rec.ward, rec.bed)] = rec

    def discharge(self, ward: str, bed: str, ts: float) -> AdmissionRecord:
        rec = self.active.pop((ward, bed))
        rec.discharged_ts = ts
        self.last_discharged[(ward, bed)] = rec
        return rec
