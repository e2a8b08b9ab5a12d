"""The clinical state of one admitted bed: its vital-sign streams and care events, as of any time.

Plain Python: no I/O and no clock of its own; every question takes the time it is about.
Readings and care events may arrive out of order (a gateway flushing its buffer), so every
stream is kept time-sorted, and an answer "as of t" uses only what is timestamped at or before
t, never the future. Each stream holds its newest `keep` entries only (a ward has hundreds of
beds); the facts that must outlive that window (the first fever) are kept apart.

Decisions (CLINICAL.md has the clinical ones):
- Readings and care events timestamped before the admission are ignored: a gateway flushing
  its buffer after a new admission must not give the last patient's readings to this one.
- At one time point the first value received stands; a later one with the same ts is ignored.
- A vital whose latest reading is older than its lost window is unknown (None) to the scales:
  a dead sensor is never normal. A vital missing from `windows` gets DEFAULT_WINDOW (short, so
  a stream nobody configured goes unknown quickly rather than looking calm forever).
- A neuro care event carries any subset of the neuro fields: each field is taken from the
  latest event that carries it (an explicit null included). An ICE-only entry therefore does
  not erase an earlier seizure or oedema; the ICANS scale reads a missing finding as "none",
  so dropping it by omission would make the patient look better than recorded. A finding
  is cleared by an event that states it (seizure: false, cerebral_edema: null).
- When a stream's older entries were rotated out and nothing held is at or before t, the
  answer for that t is unknown (None), not "none": e.g. oxygen device, vasopressors.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

from monitor.clinical.crs import crs_grade
from monitor.clinical.icans import icans_grade
from monitor.clinical.news2 import news2
from monitor.clinical.snapshot import Snapshot
from monitor.clinical.thresholds import (
    FEVER_C,
    MAP_LOW,
    MASKING_DRUGS,
    ROOM_AIR_FIO2,
    SBP_LOW,
    SPO2_LOW,
)
from monitor.clock import iso
from monitor.ingest.messages import VITALS, Admission, CareEvent, Observation
from monitor.state.assessment import Assessment

SUSTAINED_S = 120.0  # one low reading standing this long by the device clock is sustained
LOW = {"sbp": SBP_LOW, "map": MAP_LOW, "spo2": SPO2_LOW}  # below: hypotension / hypoxaemia
# Monitor streams sampled every few seconds: the scales read the median of the newest
# three samples (within SMOOTH_S) rather than one sample, so that a single artefact does
# not page anyone. The `vitals` in the state still show the newest sample as measured.
SMOOTHED = ("hr", "rr", "spo2")
SMOOTH_S = 120.0
DEFAULT_WINDOW = (60.0, 300.0)  # (stale_after_s, lost_after_s) for a vital not in `windows`
NEURO_FIELDS = (
    "ice_score",
    "acvpu",
    "seizure",
    "seizure_prolonged",
    "motor_weakness",
    "cerebral_edema",
)
_ABSENT = object()  # a neuro field the event did not carry
_TS = itemgetter(0)


class _Series:
    """Time-sorted (ts, value) pairs, the newest `keep` only.

    Entries are dropped oldest first, so every dropped ts is older than every ts held;
    `dropped_upto` is the newest ts ever dropped (None: nothing was).
    """

    __slots__ = ("items", "dropped_upto")

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self.dropped_upto: float | None = None

    def add(self, ts: float, value: Any, keep: int) -> None:
        items = self.items
        i = bisect_left(items, ts, key=_TS)
        if i < len(items) and items[i][0] == ts:
            return  # this time point is held already: the first value stands
        items.insert(i, (ts, value))
        if len(items) > keep:
            old = items.pop(0)[0]  # may be the one just added, if it is the oldest
            if self.dropped_upto is None or old > self.dropped_upto:
                self.dropped_upto = old

    def at(self, t: float) -> tuple[float, Any] | None:
        """The newest entry at or before t."""
        i = bisect_right(self.items, t, key=_TS)
        return self.items[i - 1] if i else None

    def newest(self, t: float, n: int) -> list[tuple[float, Any]]:
        """Up to n entries at or before t, newest first."""
        i = bisect_right(self.items, t, key=_TS)
        return self.items[max(0, i - n) : i][::-1]

    def complete_at(self, t: float) -> bool:
        """False when entries at or before t were rotated out: 'none held' means unknown."""
        return self.dropped_upto is None or self.dropped_upto > t


def _drug(name: Any) -> str | None:
    """Drug names compare case-blind: "Tocilizumab" is tocilizumab."""
    if name is None:
        return None
    return str(name).strip().lower() or None


class BedState:
    """One admission in one bed. `windows`: vital -> (stale_after_s, lost_after_s)."""

    __slots__ = (
        "admission",
        "windows",
        "keep",
        "_vitals",
        "_latest",
        "_first_fever",
        "_oxygen",
        "_pressors",
        "_meds",
        "_neuro",
    )

    def __init__(
        self, admission: Admission, windows: dict[str, tuple[float, float]], keep: int = 16
    ):
        if keep < 2:
            raise ValueError("keep must be at least 2 (sustained needs two readings)")
        self.admission = admission
        self.windows = dict(windows)
        self.keep = keep
        self._vitals: dict[str, _Series] = {}  # vital -> (ts, value)
        self._latest: float | None = None  # the newest observation time held, any vital
        self._first_fever: float | None = None  # survives rotation: CRS diagnosed from then
        self._oxygen = _Series()  # (ts, (device, flow_lpm, fio2))
        self._pressors: dict[str, _Series] = {}  # drug -> (ts, "start" | "stop")
        self._meds: dict[str, _Series] = {}  # drug -> (ts, None)
        self._neuro = _Series()  # (ts, tuple in NEURO_FIELDS order, _ABSENT if not given)

    # -- input -----------------------------------------------------------------------------

    def add_observation(self, obs: Observation) -> None:
        if obs.ts < self.admission.ts:
            return
        for name, value in obs.values.items():
            if name not in VITALS or value is None:
                continue
            series = self._vitals.get(name)
            if series is None:
                series = self._vitals[name] = _Series()
            series.add(obs.ts, value, self.keep)
            if self._latest is None or obs.ts > self._latest:
                self._latest = series.items[-1][0]
            if (
                name == "temp_c"
                and isinstance(value, float | int)
                and value >= FEVER_C
                and (self._first_fever is None or obs.ts < self._first_fever)
            ):
                self._first_fever = obs.ts

    def add_care(self, ev: CareEvent) -> None:
        if ev.ts < self.admission.ts:
            return
        d = ev.data
        if ev.type == "oxygen":
            entry = (d.get("device"), d.get("flow_lpm"), d.get("fio2"))
            self._oxygen.add(ev.ts, entry, self.keep)
        elif ev.type == "vasopressor":
            drug, action = _drug(d.get("drug")), d.get("action")
            if drug and action in ("start", "stop"):
                self._pressors.setdefault(drug, _Series()).add(ev.ts, action, self.keep)
        elif ev.type == "medication":
            drug = _drug(d.get("drug"))
            if drug:
                self._meds.setdefault(drug, _Series()).add(ev.ts, None, self.keep)
        elif ev.type == "neuro":
            self._neuro.add(ev.ts, tuple(d.get(k, _ABSENT) for k in NEURO_FIELDS), self.keep)

    # -- questions -------------------------------------------------------------------------

    @property
    def latest_ts(self) -> float | None:
        """The newest observation time held, any vital."""
        return self._latest

    def snapshot_at(self, t: float) -> Snapshot:
        """What the scales read as of t. Pass the present (wall clock) for the live state.

        Oxygen: with no oxygen event in this admission the patient is taken to be on room
        air ("room_air"), not unknown. This is deliberate: SpO2 < 90 on room air still grades
        CRS 2 (CLINICAL.md), so a care entry not made yet cannot hide hypoxaemia, whereas an
        unknown device would make the grade unknown. Flow and FiO2 come from the oxygen event,
        or from the device stream when the event (or its absence) gives none.
        """
        v = {name: self._value_at(name, t) for name in VITALS}
        for name in SMOOTHED:
            if v[name] is not None:
                v[name] = self._median_at(name, t)
        clock = self._device_clock(t)
        neuro, neuro_acvpu = self._neuro_at(t)
        device, flow, fio2 = self._oxygen_at(t)
        if device == "room_air" and self._oxygen.at(t) is None:
            # no oxygen recorded in this admission, but a device reports a flow or an FiO2
            # above air (a pulse oximeter's components): on oxygen, device unknown
            flow_now, fio2_now = v["o2_flow_lpm"], v["fio2"]
            if (flow_now or 0) > 0 or (fio2_now or 0) > ROOM_AIR_FIO2:
                device = None
        no_bp = v["sbp"] is None and v["map"] is None
        return Snapshot(
            temp_c=v["temp_c"],
            hr=v["hr"],
            rr=v["rr"],
            spo2=v["spo2"],
            sbp=v["sbp"],
            dbp=v["dbp"],
            map=v["map"],
            acvpu=self._acvpu_at(t, neuro_acvpu),
            o2_device=device,
            o2_flow_lpm=flow if flow is not None else v["o2_flow_lpm"],
            fio2=fio2 if fio2 is not None else v["fio2"],
            vasopressors=self._pressors_at(t),
            spo2_scale=self.admission.spo2_scale,
            fever_masked=self.fever_masked_at(t),
            ice_score=neuro.get("ice_score"),
            seizure=neuro.get("seizure"),
            seizure_prolonged=neuro.get("seizure_prolonged"),
            motor_weakness=neuro.get("motor_weakness"),
            cerebral_edema=neuro.get("cerebral_edema"),
            hypotension_sustained=None if no_bp else self._sustained(("sbp", "map"), t, clock),
            hypoxaemia_sustained=None
            if v["spo2"] is None
            else self._sustained(("spo2",), t, clock),
        )

    def fever_masked_at(self, t: float) -> bool:
        """CRS was diagnosed (a temperature >= 38.0 C at or before t, in this admission) and a
        masking drug was given between the first fever and t (both included)."""
        first = self._first_fever
        if first is None:
            return False
        for drug, series in self._meds.items():
            if drug in MASKING_DRUGS:
                i = bisect_left(series.items, first, key=_TS)
                if i < len(series.items) and series.items[i][0] <= t:
                    return True
        return False

    def vitals(self, now: float) -> dict[str, dict[str, Any]]:
        """Per vital, its newest reading at or before `now` and how fresh it is.

        status: "live" (age <= stale_after), "stale" (<= lost_after), "lost" (older; the value
        is still shown, but the scales treat it as unknown), or "missing": the vital is
        configured in `windows` (or was seen) but has no reading at or before now.
        """
        out: dict[str, dict[str, Any]] = {}
        for name in VITALS:
            series = self._vitals.get(name)
            if series is None and name not in self.windows:
                continue
            item = series.at(now) if series else None
            if item is None:
                out[name] = {"value": None, "ts": None, "status": "missing"}
                continue
            ts, value = item
            stale, lost = self._window(name)
            age = now - ts
            status = "live" if age <= stale else "stale" if age <= lost else "lost"
            out[name] = {"value": value, "ts": ts, "status": status}
        return out

    def assess(self, now: float, at: float | None = None) -> Assessment:
        """Grade the bed as of `at` (default `now`, the present). A caller may pass an earlier
        `at` (a late reading, graded at its own time) or a slightly later one (a device clock
        running ahead); vitals freshness is judged at `at` too."""
        at = now if at is None else at
        s = self.snapshot_at(at)
        return Assessment(
            at=at,
            admission=self.admission,
            snapshot=s,
            crs=crs_grade(s),
            icans=icans_grade(s),
            news2=news2(s),
            vitals=self.vitals(at),
            fever_masked=s.fever_masked,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _window(self, name: str) -> tuple[float, float]:
        return self.windows.get(name, DEFAULT_WINDOW)

    def _value_at(self, name: str, t: float) -> Any:
        series = self._vitals.get(name)
        item = series.at(t) if series else None
        if item is None or t - item[0] > self._window(name)[1]:
            return None
        return item[1]

    def _median_at(self, name: str, t: float) -> float:
        """The median of the newest three readings at or before t, when all three lie within
        SMOOTH_S of the newest: one artefactual sample (a motion artefact, a lead falling
        off) does not move the scales; two in a row do. Fewer readings: the newest."""
        items = self._vitals[name].newest(t, 3)  # newest first
        if len(items) < 3 or items[0][0] - items[-1][0] > SMOOTH_S:
            return items[0][1]
        return sorted(value for _, value in items)[1]

    def _device_clock(self, t: float) -> float | None:
        """The device clock as of t: the newest observation time of any vital at or before t."""
        times = [item[0] for s in self._vitals.values() if (item := s.at(t)) is not None]
        return max(times, default=None)

    def _sustained(self, names: tuple[str, ...], t: float, clock: float | None) -> bool | None:
        """CLINICAL.md: the latest reading is low, and so was the one before it, or it has
        stood SUSTAINED_S by the device clock. A reading is one time point: low if any of
        `names` at that time is below its LOW bound."""
        low: dict[float, bool] = {}
        for name in names:
            series = self._vitals.get(name)
            for ts, value in series.newest(t, 2) if series else ():
                low[ts] = low.get(ts, False) or value < LOW[name]
        if not low:
            return None
        latest, *before = sorted(low, reverse=True)[:2]
        if not low[latest]:
            return False
        if before and low[before[0]]:
            return True
        return clock is not None and clock - latest >= SUSTAINED_S

    def _oxygen_at(self, t: float) -> tuple[str | None, float | None, float | None]:
        item = self._oxygen.at(t)
        if item is not None:
            return item[1]
        return ("room_air" if self._oxygen.complete_at(t) else None), None, None

    def _pressors_at(self, t: float) -> tuple[str, ...] | None:
        running = []
        for drug, series in self._pressors.items():
            item = series.at(t)
            if item is None and not series.complete_at(t):
                return None  # its start or stop was rotated out: unknown
            if item is not None and item[1] == "start":
                running.append(drug)
        return tuple(sorted(running))

    def _neuro_at(self, t: float) -> tuple[dict[str, Any], tuple[float, str] | None]:
        """Each neuro field from the latest event at or before t that carries it, and the
        latest ACVPU assessed there as (ts, level)."""
        found: dict[str, Any] = {}
        acvpu = None
        held = self._neuro.items
        for ts, entry in reversed(held[: bisect_right(held, t, key=_TS)]):
            for name, value in zip(NEURO_FIELDS, entry, strict=True):
                if value is not _ABSENT:
                    found.setdefault(name, value)
                    if name == "acvpu" and value is not None and acvpu is None:
                        acvpu = (ts, value)
        return found, acvpu

    def _acvpu_at(self, t: float, neuro: tuple[float, str] | None) -> str | None:
        """From the vitals stream or the neuro assessment, whichever is newer (the assessment
        on a tie); unknown once older than the acvpu lost window."""
        candidates = [neuro] if neuro is not None else []
        series = self._vitals.get("acvpu")
        if series and (item := series.at(t)) is not None:
            candidates.append(item)
        if not candidates:
            return None
        ts, value = max(candidates, key=_TS)
        return value if t - ts <= self._window("acvpu")[1] else None


def day_label(infusion_ts: float | None, t: float) -> str | None:
    """Days since the CAR-T infusion as "D+n" (infusion day D+0; "D-1" the day before),
    counted in elapsed 24-hour periods (the ward's calendar zone is not known here)."""
    if infusion_ts is None:
        return None
    n = math.floor((t - infusion_ts) / 86400.0)
    return f"D+{n}" if n >= 0 else f"D{n}"


def to_state(ward: str, bed: str, a: Assessment) -> dict[str, Any]:
    """The retained `{p}/{ward}/{bed}/state` payload (SPEC.md), times as ISO 8601 UTC."""
    n = a.news2
    return {
        "ward": ward,
        "bed": bed,
        "patient_id": a.admission.patient_id,
        "ts": iso(a.at),
        "crs_grade": a.crs.grade,
        "crs_at_least": a.crs.at_least,
        "icans_grade": a.icans.grade,
        "icans_at_least": a.icans.at_least,
        "news2": {
            "total": n.total,
            "band": n.band,
            "band_at_least": n.band_at_least,
            "complete": n.complete,
            "single_parameter_3": n.single_parameter_3,
        },
        "risk": {},
        "vitals": {
            name: {"value": v["value"], "ts": iso(v["ts"]), "status": v["status"]}
            for name, v in a.vitals.items()
        },
        "reasons": [*a.crs.reasons, *a.icans.reasons, *n.reasons],
        "fever_masked": a.fever_masked,
        "day": day_label(a.admission.infusion_ts, a.at),
    }
