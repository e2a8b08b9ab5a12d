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
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from alerts.view import VitalView
from monitor.clinical.crs import crs_grade
from monitor.clinical.icans import icans_grade, icans_inputs
from monitor.clinical.news2 import news2
from monitor.clinical.snapshot import Snapshot
from monitor.clinical.thresholds import (
    FEVER_C,
    MAP_LOW,
    MASKING_DRUGS,
    ROOM_AIR_FIO2,
    SBP_LOW,
    SPO2_LOW,
    SPO2_LOW_SCALE2,
)
from monitor.ingest.messages import VITALS, Admission, CareEvent, Observation
from monitor.state import cuff
from monitor.state.assessment import Assessment
from monitor.state.episode import Evidence, support_intervals
from monitor.state.persistence import (
    HR_PLAUSIBLE,
    MONITOR,
    PERSIST_S,
    extremity,
    persistent,
    spo2_persistent,
    window,
)

# Monitor streams (persistence.MONITOR) keep enough samples to cover persistence.PERSIST_S
# at a 5-second cadence; the scales read what persisted, the `vitals` in the state show the
# newest sample as measured.
MONITOR_KEEP = 64
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
_VALUE = itemgetter(1)
_KNOWN = ("live", "stale")  # a vital's status while the scales read its value
SLOW = tuple(name for name in VITALS if name not in MONITOR)  # cuff, temperature, O2, ACVPU


class _Series:
    """Time-sorted (ts, value) pairs, the newest `keep` only.

    Entries are dropped oldest first, so every dropped ts is older than every ts held;
    `dropped_upto` is the newest ts ever dropped (None: nothing was). `times` is the ts of
    each entry in `items` (searched without a key function: the hot path of grading).
    """

    __slots__ = ("items", "times", "dropped_upto")

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self.times: list[float] = []
        self.dropped_upto: float | None = None

    def add(self, ts: float, value: Any, keep: int) -> None:
        items, times = self.items, self.times
        i = bisect_left(times, ts)
        if i < len(times) and times[i] == ts:
            return  # this time point is held already: the first value stands
        items.insert(i, (ts, value))
        times.insert(i, ts)
        if len(items) > keep:
            items.pop(0)
            old = times.pop(0)  # may be the one just added, if it is the oldest
            if self.dropped_upto is None or old > self.dropped_upto:
                self.dropped_upto = old

    def at(self, t: float) -> tuple[float, Any] | None:
        """The newest entry at or before t."""
        i = bisect_right(self.times, t)
        return self.items[i - 1] if i else None

    def recent(self, t: float, seconds: float, at_least: int) -> list[tuple[float, Any]]:
        """The entries within `seconds` before the newest at or before t, and at least
        `at_least` of them when held, newest first."""
        times = self.times
        i = bisect_right(times, t)
        if not i:
            return []
        j = min(bisect_left(times, times[i - 1] - seconds), max(0, i - at_least))
        return self.items[j:i][::-1]

    def newest(self, t: float, n: int) -> list[tuple[float, Any]]:
        """Up to n entries at or before t, newest first."""
        i = bisect_right(self.times, t)
        return self.items[max(0, i - n) : i][::-1]

    def complete_at(self, t: float) -> bool:
        """False when entries at or before t were rotated out: 'none held' means unknown."""
        return self.dropped_upto is None or self.dropped_upto > t


def _next_after(t: float, series: list[_Series]) -> float:
    """The first time held in any of `series` after t (math.inf: none)."""
    ahead = [x.times[i] for x in series if (i := bisect_right(x.times, t)) < len(x.times)]
    return min(ahead, default=math.inf)


@dataclass(slots=True)
class _Slow:
    """What the scales read of a bed's slow inputs (every one but the monitor's streams:
    the cuff, temperature, oxygen, ACVPU, care events) as of `start`, and the same for
    every t in [start, valid) while the bed's input `version` stands: a bed graded each
    minute on a new heart rate reads the same cuff, temperature and care as a minute ago.
    `views` and `until`: those vitals as the tile shows them and their next status boundary
    (_vitals_of); `fields`: the Snapshot's fields they make."""

    version: int
    start: float
    valid: float
    views: dict[str, VitalView]
    until: float
    fields: dict[str, Any]


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
        "_evidence",
        "_low",
        "_memo",
        "_neuro_memo",
        "_shown",
        "_version",
        "_slow",
        "_care_latest",
        "_graded",
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
        self._evidence = Evidence()  # CRS evidence times: the masked-fever episode
        spo2_low = SPO2_LOW_SCALE2 if admission.spo2_scale == 2 else SPO2_LOW
        # below: hypotension / hypoxaemia (SpO2 against the patient's own target range)
        self._low = {"sbp": SBP_LOW, "map": MAP_LOW, "spo2": spo2_low}
        # answers asked several times while grading one time point (a vital's window, the
        # neuro fields), kept until the next input: every add clears it
        self._memo: dict[tuple, Any] = {}
        self._neuro_memo: dict[int, tuple] = {}  # _neuro_at per number of events held
        # each vital's view last shown: kept while its reading and status stay (a tile's
        # slow vitals, the cuff and temperature, repeat from one grading to the next)
        self._shown: dict[str, VitalView] = {}
        # what the scales read of the slow inputs (_Slow), kept while no slow input arrives
        # (every input but a monitor stream's reading bumps the version)
        self._version = 0
        self._slow: _Slow | None = None
        self._care_latest = -math.inf  # the newest care event's time (it may be ahead)
        self._graded: tuple = (None, None)  # (snapshot, its grades): the scales are pure

    # -- input -----------------------------------------------------------------------------

    def add_observation(self, obs: Observation) -> None:
        if obs.ts < self.admission.ts:
            return
        self._memo.clear()
        for name, value in obs.values.items():
            if name not in VITALS or value is None:
                continue
            if name not in MONITOR:
                self._version += 1
            series = self._vitals.get(name)
            if series is None:
                series = self._vitals[name] = _Series()
            series.add(
                obs.ts, value, max(MONITOR_KEEP, self.keep) if name in MONITOR else self.keep
            )
            if self._latest is None or obs.ts > self._latest:
                self._latest = series.items[-1][0]
            if name == "temp_c" and isinstance(value, float | int) and value >= FEVER_C:
                self._evidence.add(obs.ts)
                if self._first_fever is None or obs.ts < self._first_fever:
                    self._first_fever = obs.ts
            elif name in self._low and isinstance(value, float | int) and value < self._low[name]:
                if self._confirmed_low(name, obs.ts):
                    # the episode's evidence, which the masked fever reads (a low SpO2 is a
                    # monitor reading: its evidence is a slow input)
                    self._version += 1
                    self._evidence.add(obs.ts)

    def add_care(self, ev: CareEvent) -> None:
        if ev.ts < self.admission.ts:
            return
        self._memo.clear()
        self._version += 1
        self._care_latest = max(self._care_latest, ev.ts)
        d = ev.data
        if ev.type == "oxygen":
            entry = (d.get("device"), d.get("flow_lpm"), d.get("fio2"))
            self._oxygen.add(ev.ts, entry, self.keep)
            if entry[0] not in (None, "room_air"):
                self._evidence.add(ev.ts)
        elif ev.type == "vasopressor":
            drug, action = _drug(d.get("drug")), d.get("action")
            if drug and action in ("start", "stop"):
                self._pressors.setdefault(drug, _Series()).add(ev.ts, action, self.keep)
                self._evidence.add(ev.ts)
        elif ev.type == "medication":
            drug = _drug(d.get("drug"))
            if drug:
                self._meds.setdefault(drug, _Series()).add(ev.ts, None, self.keep)
        elif ev.type == "neuro":
            self._neuro_memo.clear()
            self._neuro.add(ev.ts, tuple(d.get(k, _ABSENT) for k in NEURO_FIELDS), self.keep)

    # -- questions -------------------------------------------------------------------------

    @property
    def latest_ts(self) -> float | None:
        """The newest observation time held, any vital."""
        return self._latest

    @property
    def care_latest(self) -> float:
        """The newest care event's time (-inf: none; it may be ahead of the clock)."""
        return self._care_latest

    def snapshot_at(self, t: float) -> Snapshot:
        """What the scales read as of t. Pass the present (wall clock) for the live state.

        Oxygen: with no oxygen event in this admission the patient is taken to be on room
        air ("room_air"), not unknown. This is deliberate: SpO2 < 90 on room air still grades
        CRS 2 (CLINICAL.md), so a care entry not made yet cannot hide hypoxaemia, whereas an
        unknown device would make the grade unknown. Flow and FiO2 come from the oxygen event,
        or from the device stream when the event (or its absence) gives none.
        """
        fast = self._vitals_until(t)[0]
        v: dict[str, Any] = {}  # a monitor vital as persisted (None: unknown)
        held: dict[str, int] = {}  # ... and how many readings its value persisted over
        for name in MONITOR:
            x = fast.get(name)
            if x is None or x.status not in _KNOWN:  # lost or missing: unknown
                v[name] = None
            else:
                v[name], held[name] = self._persistent_at(name, t)
        return Snapshot(
            hr=v["hr"],
            rr=v["rr"],
            spo2=v["spo2"],
            spo2_scale=self.admission.spo2_scale,
            hypoxaemia_sustained=None
            if v["spo2"] is None
            else (held.get("spo2", 0) >= 2 and v["spo2"] < self._low["spo2"]),
            **self._slow_at(t).fields,
        )

    def _slow_at(self, t: float) -> _Slow:
        """What the scales read of the slow inputs as of t: kept from an earlier t while
        it holds (_Slow)."""
        slow = self._slow
        if slow is None or slow.version != self._version or not slow.start <= t < slow.valid:
            slow = self._slow = self._slow_now(t)
        return slow

    def _slow_now(self, t: float) -> _Slow:
        views, until = self._vitals_of(SLOW, t)
        # a vital the scales may read: its newest reading while live or stale (a lost one is
        # unknown), as the tile shows it
        v: dict[str, Any] = dict.fromkeys(SLOW)
        for name, x in views.items():
            if x.status in _KNOWN:
                v[name] = x.value
        confirmed = cuff.hypotension(self._vitals, self._low, self._meds, t)
        if not confirmed and v["sbp"] is not None:
            v["sbp"] = self._least_extreme_sbp(t)
        neuro, neuro_acvpu = self._neuro_at(t)
        device, flow, fio2 = self._oxygen_at(t)
        if device == "room_air" and self._oxygen.at(t) is None:
            # no oxygen recorded in this admission, but a device reports a flow or an FiO2
            # above air (a pulse oximeter's components): on oxygen, device unknown
            flow_now, fio2_now = v["o2_flow_lpm"], v["fio2"]
            if (flow_now or 0) > 0 or (fio2_now or 0) > ROOM_AIR_FIO2:
                device = None
        no_bp = v["sbp"] is None and v["map"] is None
        masked_until = self._masked_until(t)
        masked = masked_until is not None
        fields = {
            "temp_c": v["temp_c"],
            "sbp": v["sbp"],
            "dbp": v["dbp"],
            "map": v["map"],
            "acvpu": self._acvpu_at(t, neuro_acvpu),
            "o2_device": device,
            "o2_flow_lpm": flow if flow is not None else v["o2_flow_lpm"],
            "fio2": fio2 if fio2 is not None else v["fio2"],
            "vasopressors": self._pressors_at(t),
            "fever_masked": masked,
            "ice_score": neuro.get("ice_score"),
            "seizure": neuro.get("seizure"),
            "seizure_prolonged": neuro.get("seizure_prolonged"),
            "motor_weakness": neuro.get("motor_weakness"),
            "cerebral_edema": neuro.get("cerebral_edema"),
            "hypotension_sustained": None if no_bp else confirmed,
        }
        # Until when this holds with no new input: a status boundary (a value read only while
        # not lost; the systolic before the newest), an input timed ahead of t (a reading or
        # a care event), and while the fever is masked its episode's earliest resolution
        # (time alone ends it). Unmasked, time alone does not mask: a quiet day stays found.
        slow = [self._vitals[name] for name in SLOW if name in self._vitals]
        resolves = math.inf if masked_until is None else masked_until
        valid = min(until, self._next_care(t), _next_after(t, slow), resolves)
        return _Slow(self._version, t, valid, views, until, fields)

    def fever_masked_at(self, t: float) -> bool:
        """CLINICAL.md (revised): CRS was diagnosed (a fever at or before t), a masking drug
        was given during a CRS episode (CRS evidence within EPISODE_QUIET_S before it), and
        that episode has not resolved by t (episode.py)."""
        return self._masked_until(t) is not None

    def _masked_until(self, t: float) -> float | None:
        """None while the fever is not masked at t (fever_masked_at); while it is, a time
        after t before which it stays masked with no new input (Evidence.masked_until)."""
        if self._first_fever is None or self._first_fever > t:
            return None
        doses = [
            ts
            for drug, series in self._meds.items()
            if drug in MASKING_DRUGS
            for ts, _ in series.items
            if self._first_fever <= ts <= t
        ]
        if not doses:
            return None
        pressors = [series.items for series in self._pressors.values()]
        support = support_intervals(self._oxygen.items, pressors, t)
        return self._evidence.masked_until(doses, t, support)

    def vitals(self, now: float) -> dict[str, VitalView]:
        """Per vital, its newest reading at or before `now` and how fresh it is.

        status: "live" (age <= stale_after), "stale" (<= lost_after), "lost" (older; the value
        is still shown, but the scales treat it as unknown), or "missing": the vital is
        configured in `windows` (or was seen) but has no reading at or before now.
        The answer is shared: do not change it.
        """
        return self._vitals_until(now)[0]

    def _vitals_until(self, now: float) -> tuple[dict[str, VitalView], float]:
        """`vitals(now)`, and the first time after `now` at which one of them may change
        status with no new input (math.inf: none will): the next stale or lost boundary.
        Asked by the snapshot and by the assessment of one time point: answered once."""
        key = ("vitals", now)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._vitals_now(now)
        return found

    def _shown_as(self, name: str, value: Any, ts: float | None, status: str) -> VitalView:
        """The vital's view, the one shown last while its reading and status are the same."""
        last = self._shown.get(name)
        if last is not None and last.ts == ts and last.status == status and last.value is value:
            return last
        view = self._shown[name] = VitalView(value, ts, status)
        return view

    def _vitals_now(self, now: float) -> tuple[dict[str, VitalView], float]:
        views, until = self._vitals_of(MONITOR, now)
        slow = self._slow_at(now)
        views.update(slow.views)  # in VITALS order: the monitor's streams come first
        return views, min(until, slow.until)

    def _vitals_of(self, names: tuple[str, ...], now: float) -> tuple[dict[str, VitalView], float]:
        """`_vitals_until` for some of the vitals, in the order given."""
        until = math.inf
        out: dict[str, VitalView] = {}
        for name in names:
            series = self._vitals.get(name)
            if series is None and name not in self.windows and name != "acvpu":
                continue
            item = series.at(now) if series else None
            if name == "acvpu":  # the level the scales read: the stream's or the assessment's
                item = self._acvpu_item(now, self._neuro_at(now)[1])
                if item is None and series is None and name not in self.windows:
                    continue
            if item is None:
                out[name] = self._shown_as(name, None, None, "missing")
                continue
            ts, value = item
            age = now - ts
            configured = self.windows.get(name, DEFAULT_WINDOW)[0]
            if age <= configured:
                # fresh by the configured window, so by the widened one too (which may keep
                # it live longer: the boundary named is then early, never late)
                status, edge = "live", ts + configured
            else:
                stale, lost = self._window(name, now)
                if age <= stale:
                    status, edge = "live", ts + stale
                elif age <= lost:
                    status, edge = "stale", ts + lost
                else:
                    status, edge = "lost", math.inf
            until = min(until, edge)
            out[name] = self._shown_as(name, value, ts, status)
        sbp = self._vitals.get("sbp") if "sbp" in names else None
        if sbp is not None:  # NEWS2 may read the reading before the newest (_least_extreme_sbp)
            lost = self._window("sbp")[1]
            until = min([until, *(ts + lost for ts, _ in sbp.newest(now, 2) if now - ts <= lost)])
        return out, until

    def assess(self, now: float, at: float | None = None) -> Assessment:
        """Grade the bed as of `at` (default `now`, the present). A caller may pass an earlier
        `at` (a late reading, graded at its own time) or a slightly later one (a device clock
        running ahead); vitals freshness is judged at `at` too."""
        at = now if at is None else at
        s = self.snapshot_at(at)
        vitals, until = self._vitals_until(at)
        if s.fever_masked:
            until = at  # the mask ends after a quiet day: time alone may change it (not tracked)
        elif self._care_latest > at:
            until = min(until, self._next_care(at))  # a care event timed ahead counts from then
        # the scales are pure functions of the snapshot, which often repeats from one
        # grading to the next (a steady patient's persisted values): graded once
        last, grades = self._graded
        if s != last:
            # the neurological findings change far less often than the vital signs
            same_neuro = last is not None and icans_inputs(s) == icans_inputs(last)
            grades = (crs_grade(s), grades[1] if same_neuro else icans_grade(s), news2(s))
            self._graded = (s, grades)
        return Assessment(
            at=at,
            admission=self.admission,
            snapshot=s,
            crs=grades[0],
            icans=grades[1],
            news2=grades[2],
            vitals=vitals,
            fever_masked=s.fever_masked,
            notes=self._notes(s, vitals),
            steady_until=until,
        )

    def _next_care(self, t: float) -> float:
        """The time of the first care event held that is timed after t (math.inf: none)."""
        series = [self._oxygen, self._neuro, *self._pressors.values(), *self._meds.values()]
        return _next_after(t, series)

    def _notes(self, s: Snapshot, vitals: dict[str, VitalView]) -> tuple[str, ...]:
        """Readings the scales did not believe (yet): a tier-1 "check the probe" note."""
        out = []
        live = {k: v.value for k, v in vitals.items() if v.status == "live"}
        spo2, hr, sbp = live.get("spo2"), live.get("hr"), live.get("sbp")
        if spo2 is not None and spo2 < self._low["spo2"] and not s.hypoxaemia_sustained:
            out.append(f"SpO2 {spo2:g} % not persistent: check the probe")
        if hr is not None and hr < HR_PLAUSIBLE and spo2 is not None:
            out.append(f"heart rate {hr:g} while SpO2 reads a pulse: check the ECG leads")
        if sbp is not None and sbp < self._low["sbp"] and not s.hypotension_sustained:
            out.append(f"systolic {sbp:g} mmHg not confirmed: repeat the cuff")
        return tuple(out)

    # -- helpers ---------------------------------------------------------------------------

    def _window(self, name: str, t: float | None = None) -> tuple[float, float]:
        """(stale_after_s, lost_after_s): as configured, and for the monitor streams widened
        to their own cadence as of t (persistence.window)."""
        configured = self.windows.get(name, DEFAULT_WINDOW)
        series = self._vitals.get(name)
        if name not in MONITOR or series is None or t is None:
            return configured
        key = ("window", name, t)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = window(configured, series.newest(t, 6))
        return found

    def _readings(self, name: str, t: float) -> list[tuple[float, Any]]:
        """The monitor vital's readings held at or before t, newest first; a heart rate
        below HR_PLAUSIBLE while SpO2 reads (a pulse) is a lead off and left out."""
        items = self._vitals[name].recent(t, PERSIST_S, 2)
        if name == "hr":
            pulse = self._vitals_until(t)[0].get("spo2")
            if pulse is not None and pulse.status == "live" and items:
                if min(map(_VALUE, items)) < HR_PLAUSIBLE:  # (rare: the list as it is)
                    items = [r for r in items if r[1] >= HR_PLAUSIBLE]
        return items

    def _persistent_at(self, name: str, t: float) -> tuple[Any, int]:
        """What the monitor vital says once persisted (persistence.persistent); a heart rate
        made only of lead-off readings is unknown."""
        items = self._readings(name, t)
        if not items:
            return None, 0
        if name == "spo2":
            return spo2_persistent(items, self._low["spo2"], self.admission.spo2_scale)
        return persistent(items, extremity(name, self.admission.spo2_scale))

    def _least_extreme_sbp(self, t: float) -> float | None:
        """Systolic for NEWS2 while a low reading is not confirmed: the less extreme of the
        newest two readings."""
        series = self._vitals["sbp"]
        items = [r for r in series.newest(t, 2) if t - r[0] <= self._window("sbp")[1]]
        if not items:
            return None
        return persistent(items, extremity("sbp"))[0]

    def _confirmed_low(self, name: str, ts: float) -> bool:
        """At ingest: whether this low reading makes sustained hypotension or hypoxaemia
        (CRS episode evidence), by the same rules as the scales."""
        if name == "spo2":
            readings = self._vitals["spo2"].recent(ts, PERSIST_S, 2)
            if not readings:
                return False  # rotated out at once: older than every reading held
            value, held = spo2_persistent(readings, self._low["spo2"], self.admission.spo2_scale)
            return held >= 2 and value < self._low["spo2"]
        newest = cuff.times(self._vitals, ts, 2)
        return len(newest) > 1 and bool(cuff.low_at(self._vitals, self._low, newest[1]))

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
        latest ACVPU assessed there as (ts, level). The answer is shared: do not change it."""
        held = self._neuro.items
        n = bisect_right(self._neuro.times, t)  # the answer depends on the events before n only
        memo = self._neuro_memo.get(n)
        if memo is not None:
            return memo
        found: dict[str, Any] = {}
        acvpu = None
        for ts, entry in reversed(held[:n]):
            for name, value in zip(NEURO_FIELDS, entry, strict=True):
                if value is not _ABSENT:
                    found.setdefault(name, value)
                    if name == "acvpu" and value is not None and acvpu is None:
                        acvpu = (ts, value)
            if acvpu is not None and len(found) == len(NEURO_FIELDS):
                break  # every field found: older events change nothing
        memo = self._neuro_memo[n] = (found, acvpu)
        return memo

    def _acvpu_item(self, t: float, neuro: tuple[float, str] | None) -> tuple[float, str] | None:
        """The newest ACVPU from the vitals stream or the neuro assessment (the assessment
        on a tie), as (ts, level)."""
        candidates = [neuro] if neuro is not None else []
        series = self._vitals.get("acvpu")
        if series and (item := series.at(t)) is not None:
            candidates.append(item)
        return max(candidates, key=_TS) if candidates else None

    def _acvpu_at(self, t: float, neuro: tuple[float, str] | None) -> str | None:
        """What the scales read: `_acvpu_item`, unknown once older than its lost window."""
        item = self._acvpu_item(t, neuro)
        if item is None:
            return None
        ts, value = item
        return value if t - ts <= self._window("acvpu")[1] else None
