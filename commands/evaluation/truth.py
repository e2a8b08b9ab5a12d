"""The simulator's ground truth (`simulate --truth`, devices/README.md), read for scoring.

Per bed: the patient's first line (cohort, admission, end of the simulation), the true
CRS and ICANS grades minute by minute (each change), every onset of CRS grade >= 2 (and
>= 3) with the observation or care event that defines it, artefacts and confounders.
Older truth files without onset lines get their onsets from the grade changes, defined at
the true onset itself.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from monitor.ingest.validate import parse_ts

ONSET_GRADE = 2


@dataclass
class Onset:
    grade: int  # 2: the first rise to >= 2 of an episode; 3: to >= 3
    true_ts: float  # when the true grade reached it
    defined_ts: float | None  # the observation or care event that shows it to the ward
    # (None: the ward was never shown it while it lasted: not scored for detection)
    defined_by: str = ""
    masked: bool = False  # fever masked by tocilizumab or steroids (no fever needed)
    after_care: str | None = None  # "oxygen" | "vasopressor": defined by a care event


@dataclass
class BedTruth:
    ward: str
    bed: str
    patient_id: str
    cohort: str
    start: float
    end: float
    grades: list[tuple[float, int, int]] = field(default_factory=list)  # (ts, crs, icans)
    onsets: list[Onset] = field(default_factory=list)
    confounders: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, kind
    artefacts: int = 0

    def grade_at(self, ts: float) -> tuple[int, int]:
        """(true CRS grade, true ICANS grade) at ts."""
        i = bisect_right(self._times, ts) - 1
        if i < 0:
            return 0, 0
        _, crs, icans = self.grades[i]
        return crs, icans

    def confounder_at(self, ts: float) -> str | None:
        for start, end, kind in self.confounders:
            if start <= ts < end:
                return kind
        return None

    @property
    def days(self) -> float:
        return (self.end - self.start) / 86400

    def quiet_days(self) -> float:
        """Days with true CRS grade < 2 and ICANS grade 0."""
        total, marks = 0.0, [*self.grades, (self.end, 0, 0)]
        for (t, crs, icans), (t2, _, _) in zip(marks, marks[1:], strict=False):
            if crs < ONSET_GRADE and icans == 0:
                total += max(0.0, min(t2, self.end) - max(t, self.start))
        return total / 86400

    def finish(self) -> None:
        self.grades.sort(key=lambda g: g[0])
        self._times = [g[0] for g in self.grades]
        if not self.onsets:  # an older truth file: onsets from the grade changes
            self.onsets = derived_onsets(self.grades)
        self.onsets.sort(key=lambda o: (o.true_ts, o.grade))


def derived_onsets(grades: list[tuple[float, int, int]]) -> list[Onset]:
    out, prev = [], 0
    for ts, crs, _ in grades:
        for g in (2, 3):
            if crs >= g > prev:
                out.append(Onset(g, ts, ts, "true grade (no defining event in the truth file)"))
        prev = crs
    return out


def read_truth(path: Path) -> dict[tuple[str, str], BedTruth]:
    """(ward, bed) -> BedTruth. A bed admitted twice keeps its last patient."""
    beds: dict[tuple[str, str], BedTruth] = {}
    last_ts = 0.0
    for n, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            key = (rec["ward"], rec["bed"])
            ts = parse_ts(rec["ts"])
        except Exception as e:  # any malformed line is the file's fault
            raise ValueError(f"{path}:{n}: not a truth record ({e})") from None
        last_ts = max(last_ts, ts)
        if "cohort" in rec:
            end = parse_ts(rec["end"]) if rec.get("end") else None
            beds[key] = BedTruth(
                rec["ward"], rec["bed"], rec["patient_id"], rec["cohort"], ts, end or -1.0
            )
        b = beds.get(key)
        if b is None:
            raise ValueError(f"{path}:{n}: a record for {key[0]}/{key[1]} before its patient")
        if "crs_grade" in rec:
            b.grades.append((ts, int(rec["crs_grade"]), int(rec.get("icans_grade") or 0)))
        if "onset_grade" in rec:
            b.onsets.append(
                Onset(
                    int(rec["onset_grade"]),
                    parse_ts(rec["true_onset_ts"]),
                    ts if rec.get("observable", True) else None,
                    rec.get("defined_by", ""),
                    bool(rec.get("masked")),
                    rec.get("after_care"),
                )
            )
        if "confounder" in rec:
            b.confounders.append((ts, ts + float(rec.get("duration_s") or 0), rec["confounder"]))
        if "artefact" in rec:
            b.artefacts += 1
    for b in beds.values():
        if b.end < 0:
            b.end = last_ts
        b.finish()
    return beds
