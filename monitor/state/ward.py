"""The clinical state of every admitted bed, kept current as accepted items arrive.

Called only after an item is committed: the state never runs ahead of what is stored.
Every change of grade becomes a timeline row with its reasons.
"""

from __future__ import annotations

import math
import sqlite3

import orjson

from alerts.view import BedView
from monitor.clinical.thresholds import FEVER_C
from monitor.ingest.items import AdmissionRecord, Item
from monitor.ingest.messages import CareEvent, Observation
from monitor.state.assessment import Assessment
from monitor.state.bedstate import DEFAULT_WINDOW, BedState
from monitor.state.inputlag import InputLag
from monitor.state.view import bed_view, empty_view, to_wire
from monitor.store.reads import care_rows, restore_observations

RESTORE_HISTORY_S = 3 * 3600


class Ward:
    def __init__(self, windows: dict[str, tuple[float, float]]):
        self.windows = windows
        self.beds: dict[str, BedState] = {}  # admission id -> state
        self.records: dict[str, AdmissionRecord] = {}
        self.last: dict[str, Assessment] = {}  # admission id -> last recorded assessment
        # admission id -> (assessment, its view's alert_key()): taken only when needed
        self.keys: dict[str, tuple[Assessment, tuple]] = {}
        # admission ids whose state topic needs publishing, in the order they became so
        # (a dict, not a set: what is published, and alerted, comes in an order that does
        # not depend on hashing)
        self.dirty: dict[str, None] = {}
        self.closed: dict[str, AdmissionRecord] = {}  # discharged, empty state not yet sent
        self.devices: dict[tuple[str, str], str] = {}  # (ward, bed) -> online | offline
        # When set, apply() only marks touched beds and `reassess_touched` grades them later
        # (the daemon's state pass: at most once per bed per state.bed_min_interval_s
        # however many readings arrive meanwhile, within the pass's share of time).
        self.defer = False
        self.touched: dict[str, None] = {}  # in order of first touch: graded oldest first
        self.graded_in_pass = 0  # beds the last reassess_touched graded
        self.graded: dict[str, float] = {}  # admission id -> when last graded
        self.tick_after_s = 0.0  # tick(): skip beds graded less than this ago
        self.forecaster = None  # forecast.service.Forecaster, when enabled
        self.risk: dict[str, dict] = {}  # admission id -> the latest forecast
        self.forecast_every_s = 0.0  # a bed's risk is recomputed at most this often...
        self.forecast_at: dict[str, float] = {}  # ... (admission id -> when it last was)
        # how late the input arrives: feeds are judged behind it, at most the fast vitals'
        # lost window behind (further, the daemon's own lag alert speaks for every bed)
        self.input_lag = InputLag(windows.get("hr", DEFAULT_WINDOW)[1])

    def horizon(self, now: float) -> float:
        """The time the ward's input is complete to: the clock less the daemon's own lag
        (inputlag.py). Vitals freshness is judged there, so a reading still on its way
        through the daemon is not a patient's feed gone stale."""
        return now - self.input_lag(now)

    # -- building -----------------------------------------------------------------------
    def open_bed(self, rec: AdmissionRecord) -> BedState:
        bed = self.beds.get(rec.id)
        if bed is None:
            bed = self.beds[rec.id] = BedState(rec.admission, self.windows)
            self.records[rec.id] = rec
        return bed

    def close_bed(self, rec: AdmissionRecord, now: float) -> None:
        self.beds.pop(rec.id, None)
        self.records.pop(rec.id, None)
        self.last.pop(rec.id, None)
        self.keys.pop(rec.id, None)
        self.graded.pop(rec.id, None)
        self.risk.pop(rec.id, None)
        self.forecast_at.pop(rec.id, None)
        if self.forecaster is not None:
            ended = rec.discharged_ts if rec.discharged_ts is not None else now
            self.forecaster.discharge(rec.id, ended)
        self.closed[rec.id] = rec
        self.dirty[rec.id] = None

    def restore(self, conn: sqlite3.Connection, records: list[AdmissionRecord]) -> None:
        """Rebuild each active bed after a restart: recent readings, every care event,
        and the first fever (CRS once diagnosed stays diagnosed)."""
        for rec in records:
            bed = self.open_bed(rec)
            for ts, values in restore_observations(conn, rec.id, RESTORE_HISTORY_S, FEVER_C):
                bed.add_observation(Observation(ts, values))
            for ts, type_, data in care_rows(conn, rec.id):
                bed.add_care(CareEvent(ts, type_, data))
            self.dirty[rec.id] = None

    # -- applying committed items ---------------------------------------------------------
    def apply(self, items: list[Item], now: float) -> list[dict]:
        """Apply committed items; return timeline rows for grades that changed (late
        readings are graded at their own time too, flagged `late`)."""
        rows: list[dict] = []
        newest = None  # the newest reading of the batch: how late the input arrives
        touched: dict[str, None] = {}  # in order of first touch (not a set: the order of
        # grading is the order the forecast learns in, and must not depend on hashing)
        for item in items:
            kind = item.kind
            if kind == "device":
                self.devices[(item.ward, item.bed)] = item.body.state
                rec = self.admissions_at(item.ward, item.bed)
                if rec is not None:
                    self.dirty[rec.id] = None
                continue
            if kind in ("reject", "duplicate"):
                continue
            rec = item.record
            assert rec is not None  # every accepted item carries its admission
            if kind == "admit":
                self.open_bed(rec)
            elif kind == "discharge":
                self.close_bed(rec, now)
                touched.pop(rec.id, None)
                continue
            bed = self.beds.get(rec.id)
            if bed is None:
                continue
            if kind == "vitals":
                for obs in item.new:
                    if newest is None or obs.ts > newest:
                        newest = obs.ts
                    late = bed.latest_ts is not None and obs.ts < bed.latest_ts
                    bed.add_observation(obs)
                    if late:
                        rows += self._late(rec, bed, obs.ts, now)
            elif kind == "care":
                bed.add_care(item.body)
            touched[rec.id] = None
        if newest is not None:
            self.input_lag.observe(now, newest)
        if self.defer:
            self.touched.update(touched)
            return rows
        for adm_id in touched:
            rows += self.reassess(adm_id, now)
        return rows

    def _late(self, rec, bed: BedState, ts: float, now: float) -> list[dict]:
        past = bed.assess(now, at=ts)
        last = self.last.get(rec.id)
        if last is not None and past.key() == last.key():
            return []
        return [timeline_row(rec, past, now, late=True)]

    def reassess(self, adm_id: str, now: float, publish: bool = True) -> list[dict]:
        """Assess the bed at the present; a timeline row if its grades changed. The state
        is republished when `publish`, or when a grade or a vital's status changed."""
        bed = self.beds[adm_id]
        # as of the input's horizon; a device clock slightly ahead still counts, and so does
        # a care event entered at the present (a vasopressor started from the dashboard is
        # graded at once, however late the monitors' readings arrive)
        at = max(self.horizon(now), bed.latest_ts or -math.inf, min(now, bed.care_latest))
        current = bed.assess(now, at=at)
        self.graded[adm_id] = now
        previous = self.last.get(adm_id)
        self.last[adm_id] = current
        changed = previous is None or previous.key() != current.key()
        if self.forecaster is not None:
            # the forecast looks hours ahead from features that move over minutes: it is
            # refreshed every forecast_every_s, and at once when a grade changes
            if changed or self._forecast_due(adm_id, now):
                self.forecast_at[adm_id] = now
                self.risk[adm_id] = self.forecaster.observe(adm_id, None, current, current.at) or {}
        rec = self.records[adm_id]
        if publish or previous is None:
            self.dirty[adm_id] = None
        elif self._alert_key(adm_id, rec, previous) != self._alert_key(adm_id, rec, current):
            self.dirty[adm_id] = None  # what the rules read changed: publish
        if not changed:
            return []
        return [timeline_row(rec, current, now, late=False)]

    def _forecast_due(self, adm_id: str, now: float) -> bool:
        if self.forecaster is None:
            return False
        since = now - self.forecast_at.get(adm_id, -1e18)
        return not 0 <= since < self.forecast_every_s

    def _alert_key(self, adm_id: str, rec: AdmissionRecord, a: Assessment) -> tuple:
        """The alert_key() of the view of `a` (kept for the bed's next look)."""
        kept = self.keys.get(adm_id)
        if kept is not None and kept[0] is a:
            return kept[1]
        key = bed_view(rec.ward, rec.bed, a).alert_key()
        self.keys[adm_id] = (a, key)
        return key

    def reassess_touched(
        self, now: float, min_interval: float = 0.0, limit: int | None = None
    ) -> list[dict]:
        """Grade the beds touched since the last call (deferred mode), those touched first
        first; a bed graded less than `min_interval` ago waits for a later call, and so do
        the beds past the first `limit` graded."""
        rows = []
        graded = 0
        for adm_id in list(self.touched):
            if limit is not None and graded >= limit:
                break
            if adm_id not in self.beds:
                del self.touched[adm_id]
                continue
            elapsed = now - self.graded.get(adm_id, -1e18)
            if 0 <= elapsed < min_interval:  # negative: the clock was set back; due now
                continue
            del self.touched[adm_id]
            rows += self.reassess(adm_id, now)
            graded += 1
        self.graded_in_pass = graded
        return rows

    def tick(self, now: float) -> list[dict]:
        """Re-assess every bed against the clock: vitals go stale and lost without any
        message arriving, and that must show."""
        rows = []
        horizon = self.horizon(now)
        for adm_id in list(self.beds):
            # a bed whose readings keep arriving was graded moments ago: only the quiet ones
            # need the clock's look (stale and lost vitals); a clock set back counts as due
            elapsed = now - self.graded.get(adm_id, -1e18)
            if 0 <= elapsed < self.tick_after_s:
                continue
            # nor a bed whose assessment time alone cannot change yet (no vital due to go
            # stale or lost: Assessment.steady_until), unless its risk is due a refresh
            last = self.last.get(adm_id)
            if (
                last is not None
                and last.at <= now
                and horizon < last.steady_until
                and not self._forecast_due(adm_id, now)
            ):
                continue
            rows += self.reassess(adm_id, now, publish=False)
        if self.forecaster is not None:
            self.forecaster.advance(now)
        return rows

    def state_of(self, adm_id: str) -> tuple[str, str, BedView] | None:
        """(ward, bed, view) of a bed to publish; an empty bed once discharged."""
        closed = self.closed.pop(adm_id, None)
        if closed is not None:
            return closed.ward, closed.bed, empty_view(closed.ward, closed.bed)
        rec, last = self.records.get(adm_id), self.last.get(adm_id)
        if rec is None or last is None:
            return None
        device = self.devices.get((rec.ward, rec.bed))
        return rec.ward, rec.bed, bed_view(rec.ward, rec.bed, last, device, self.risk.get(adm_id))

    def take_dirty(self) -> list[tuple[str, str, BedView]]:
        """(ward, bed, view) of every bed whose state changed since the last call: what
        the daemon publishes (`to_wire`) and hands to alerting (replay and tests do the same)."""
        dirty, self.dirty = self.dirty, {}
        return [found for adm_id in dirty if (found := self.state_of(adm_id)) is not None]

    def admissions_at(self, ward: str, bed: str) -> AdmissionRecord | None:
        for rec in self.records.values():
            if rec.ward == ward and rec.bed == bed:
                return rec
        return None

    def states(self, ward: str | None = None) -> list[dict]:
        """The current state of every admitted bed (of one ward)."""
        out = []
        for adm_id, rec in self.records.items():
            if ward is None or rec.ward == ward:
                found = self.state_of(adm_id)
                if found is not None:
                    out.append(to_wire(found[2]))
        return out


def timeline_row(rec: AdmissionRecord, a: Assessment, now: float, late: bool) -> dict:
    reasons = list(a.crs.reasons) + list(a.icans.reasons) + list(a.news2.reasons)
    return {
        "admission_id": rec.id,
        "ward": rec.ward,
        "bed": rec.bed,
        "patient_id": rec.patient_id,
        "ts": a.at,
        "recorded_ts": now,
        "late": int(late),
        "crs_grade": a.crs.grade,
        "crs_at_least": a.crs.at_least,
        "icans_grade": a.icans.grade,
        "icans_at_least": a.icans.at_least,
        "news2_total": a.news2.total,
        "news2_band": a.news2.band,
        "news2_band_at_least": a.news2.band_at_least,
        "news2_complete": int(a.news2.complete),
        "reasons": orjson.dumps(reasons).decode(),
    }
