"""One simulated bed: patient + staff + monitor cadences + artefacts -> an ordered stream.

Pure and clock-free: `BedSim.stream()` yields `Out` items in delivery order (sim time),
each a message to publish, a connection event, or a ground-truth record. The same seeds
give the same stream, byte for byte. The simulation steps by one minute (physiology and
staff); fast vitals are sampled within it on the bed's grid (every `fast_s` seconds from
the admission). Blood pressure and nurse observations fall on that grid too, so the
vitals of one time point always travel in one message; only a cuff the nurse repeats by
hand (a reading below 90 systolic, again 2-4 min later) is off the grid.

Cadences: HR, SpO2 and RR every `fast_s` (5 s); NIBP every 15 min when unstable, 30 min by
day, 60 min at night; temperature and ACVPU at nurse rounds, hourly when febrile or
unstable, else every 4 h; a patient turning unstable (e.g. new tachycardia on the monitor)
brings the next NIBP and round forward. ACVPU goes in JSON vitals; FHIR and HL7 carry no
ACVPU, so those beds send it as a neuro care event of the same time. ICE score at neuro
checks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from monitor.clinical.thresholds import FEVER_C
from monitor.clock import iso
from monitor.ingest.messages import Observation

from .artefacts import ArtefactPlan, Window
from .encode import to_fhir, to_hl7, to_json
from .evidence import Defined, Evidence
from .physiology import Patient, state_at
from .staff import Care, Staff
from .truth import MASKING_DRUGS, crs_truth, icans_truth

PROTOCOLS = {"json": "vitals", "fhir": "fhir", "hl7": "hl7"}  # protocol -> topic kind
STEP_S = 60.0
# AR(1) measurement noise of the fast vitals: (standard deviation, correlation per sample)
NOISE = {"hr": (2.0, 0.8), "spo2": (0.8, 0.8), "rr": (1.2, 0.7)}
# Artefacts that make the SpO2 sample itself (not the patient's): never evidence of hypoxaemia
ARTEFACT_SPO2 = frozenset({"motion", "spo2_low"})


@dataclass(frozen=True, slots=True)
class Out:
    """One item of a bed's stream. kind: "msg" (publish), "will" (the connection drops
    abruptly: the broker publishes the Last Will, topic/payload), "birth" (connect if
    needed, then publish the retained `online`), "truth" (a ground-truth record)."""

    deliver_ts: float
    seq: int
    kind: str
    topic: str = ""
    payload: bytes = b""
    retain: bool = False
    truth: dict | None = None
    bed_index: int = 0


class BedSim:
    def __init__(
        self,
        *,
        index: int,
        ward: str,
        bed: str,
        prefix: str,
        protocol: str,
        patient: Patient,
        staff_rng: np.random.Generator,
        noise_rng: np.random.Generator,
        plan: ArtefactPlan,
        end: float,
        fast_s: float = 5.0,
    ):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}")
        self.index, self.ward, self.bed, self.protocol = index, ward, bed, protocol
        self.patient, self.plan = patient, plan
        self.start, self.end, self.fast_s = patient.admit_ts, end, float(fast_s)
        self.staff = Staff(staff_rng, self.start)
        self.rng = noise_rng
        self.base = f"{prefix}/{ward}/{bed}"
        self._heap: list[tuple[float, int, Out]] = []
        self._seq = 0
        self._msg_no = 0
        self._noise = dict.fromkeys(NOISE, 0.0)
        self._fever_seen: float | None = None
        self._windows = plan.all()
        self.evidence = Evidence(patient.spo2_scale)
        self._crs_fever = False  # CRS fever now (the truth's view), for the evidence
        self._now = self.start

    # -- output helpers --------------------------------------------------------------------
    def _push(
        self,
        deliver: float,
        kind: str,
        topic: str = "",
        payload: bytes = b"",
        retain: bool = False,
        truth: dict | None = None,
    ) -> None:
        out = Out(deliver, self._seq, kind, topic, payload, retain, truth, self.index)
        heapq.heappush(self._heap, (deliver, self._seq, out))
        self._seq += 1

    def _truth(self, ts: float, **fields) -> None:
        p = self.patient
        self._push(
            ts,
            "truth",
            truth={
                "ts": iso(ts),
                "ward": self.ward,
                "bed": self.bed,
                "patient_id": p.patient_id,
                **fields,
            },
        )

    def _send(
        self, ts: float, deliver: float, kind: str, payload: bytes, care: bool = False
    ) -> float | None:
        """Route one message through the offline and late artefacts: when it is delivered,
        None if lost."""
        off = self.plan.active("offline", deliver)
        if off is not None:
            if not care:
                return None
            deliver = off.end  # charted while the device was away: sent on its return
        late = self.plan.active("late", deliver)
        if late is not None:
            deliver = late.end
        self._push(deliver, "msg", f"{self.base}/{kind}", payload)
        return deliver

    def _onsets(self, found: list[Defined]) -> None:
        for d in found:
            fields = {
                "onset_grade": d.grade,
                "true_onset_ts": iso(d.true_ts),
                "observable": d.defined_ts is not None,
                "defined_by": d.by,
                "masked": d.masked,
                "after_care": d.after_care,
            }
            # an onset never shown is written when it is given up (the truth stays in order)
            self._truth(d.defined_ts if d.defined_ts is not None else self._now, **fields)

    def _grid(self, ts: float) -> float:
        """The first fast-sample time at or after ts."""
        return self.start + math.ceil((ts - self.start) / self.fast_s - 1e-9) * self.fast_s

    # -- the stream ------------------------------------------------------------------------
    def stream(self) -> Iterator[Out]:
        p, staff = self.patient, self.staff
        self._push(self.start, "msg", f"{self.base}/admit", self._admit_payload())
        self._push(self.start, "birth", f"{self.base}/device", b"online", retain=True)
        c = p.course
        self._truth(
            self.start,
            crs_grade=0,
            icans_grade=0,
            cohort=p.cohort,
            end=iso(self.end),
            spo2_scale=p.spo2_scale,
            fast_interval_s=self.fast_s,
            age=p.age,
            product=p.product,
            planned={
                "crs_grade": c.crs_grade,
                "fever_onset": iso(c.fever_onset),
                "icans_grade": c.icans_grade,
                "icans_onset": iso(c.icans.onset) if c.icans else None,
            },
        )
        if p.confounders.copd:
            self._truth(self.start, confounder="copd_scale2", duration_s=self.end - self.start)
        for e in p.confounders.episodes:
            self._truth(e.start, confounder=e.kind, duration_s=e.end - e.start)
        grades = (0, 0)
        next_fast = self.start + self.fast_s
        next_nibp = self._grid(self.start + float(self.rng.uniform(60, 300)))
        next_round = self._grid(self.start + float(self.rng.uniform(300, 1200)))
        last_nibp = last_round = None
        jitter = 0.0
        w_i = 0
        t = self.start
        while t < self.end:
            m_end = min(t + STEP_S, self.end)
            s = state_at(p, t, staff.tx)
            self._now = t
            self._crs_fever = s.temp_crs >= FEVER_C - 0.15
            for care in staff.step(t, s):
                self._care(care, t)
            grades = self._grade_truth(t, s, grades)
            # a patient turning unstable brings the next cycle forward
            if last_nibp is not None:
                sooner = self._grid(max(t, last_nibp + staff.nibp_interval(t)))
                next_nibp = min(next_nibp, sooner)
            if last_round is not None:
                sooner = self._grid(max(t, last_round + staff.round_interval(t) + jitter))
                next_round = min(next_round, sooner)
            while w_i < len(self._windows) and self._windows[w_i].start < m_end:
                self._window_truth(self._windows[w_i])
                w_i += 1
            readings: dict[float, dict] = {}
            while next_fast < m_end:
                readings[next_fast] = self._fast(next_fast, s)
                next_fast += self.fast_s
            while next_nibp < m_end:
                cuff = self._nibp(next_nibp, s)
                readings.setdefault(next_nibp, {}).update(cuff)
                last_nibp = next_nibp
                next_nibp = self._grid(next_nibp + staff.nibp_interval(next_nibp))
                if cuff["sbp"] < 90:  # a surprising reading: the nurse repeats it
                    # (off the monitor's grid: the cuff is started by hand)
                    repeat = float(round(last_nibp + self.rng.uniform(120, 240)))
                    next_nibp = min(next_nibp, repeat)
            while next_round < m_end:
                readings.setdefault(next_round, {}).update(self._round(next_round, s))
                last_round, jitter = next_round, float(self.rng.uniform(-600, 600))
                next_round = self._grid(next_round + staff.round_interval(next_round) + jitter)
            for ts in sorted(readings):
                self._vitals(ts, readings[ts])
            while self._heap and self._heap[0][0] < m_end:
                yield heapq.heappop(self._heap)[2]
            t = m_end
        self._now = self.end
        self._onsets(self.evidence.unresolved())
        while self._heap:
            yield heapq.heappop(self._heap)[2]

    def _admit_payload(self) -> bytes:
        p = self.patient
        return orjson.dumps(
            {
                "patient_id": p.patient_id,
                "ts": iso(p.admit_ts),
                "age": p.age,
                "product": p.product,
                "indication": p.indication,
                "infusion_ts": iso(p.infusion_ts),
                "spo2_scale": p.spo2_scale,
            }
        )

    def _care(self, care: Care, now: float) -> None:
        payload = orjson.dumps({"ts": iso(care.ts), **care.body})
        deliver = self._send(care.ts, now, "care", payload, care=True)
        if deliver is not None:
            self._onsets(self.evidence.care(max(care.ts, deliver), care.body))

    def _grade_truth(self, t: float, s, last: tuple[int, int]) -> tuple[int, int]:
        if s.temp_crs >= FEVER_C and self._fever_seen is None:
            self._fever_seen = t
        tx = self.staff.tx
        masked = self._fever_seen is not None and any(
            self._fever_seen <= d <= t for f in MASKING_DRUGS for d in getattr(tx, f)
        )
        now = (crs_truth(s, self.patient, masked), icans_truth(s))
        if now != last:
            self._truth(t, crs_grade=now[0], icans_grade=now[1])
        self._onsets(self.evidence.true_grade(t, now[0], s.temp_crs < FEVER_C))
        return now

    def _window_truth(self, w: Window) -> None:
        if w.kind in ("duplicate", "cuff_low"):
            return  # reported with the message it changed
        self._truth(w.start, **w.truth())
        if w.kind == "offline":
            self._push(w.start, "will", f"{self.base}/device", b"offline", retain=True)
            self._push(w.end, "birth", f"{self.base}/device", b"online", retain=True)
            self._truth(w.end, artefact="online")

    # -- measurements ----------------------------------------------------------------------
    def _fast(self, ts: float, s) -> dict:
        z = self.rng.standard_normal(3)
        out = {}
        for (name, (sd, phi)), zi in zip(NOISE.items(), z, strict=True):
            e = self._noise[name] = phi * self._noise[name] + math.sqrt(1 - phi * phi) * sd * zi
            out[name] = getattr(s, name) + e
        return {
            "hr": int(round(out["hr"])),
            "spo2": int(min(100, round(out["spo2"]))),
            "rr": int(max(4, round(out["rr"]))),
        }

    def _nibp(self, ts: float, s) -> dict:
        sbp = int(round(s.sbp + self.rng.normal(0, 4)))
        dbp = int(round(min(s.dbp + self.rng.normal(0, 3), sbp - 15)))
        if self.plan.take_cuff_low(ts):  # the cuff misread (movement, wrong size)
            sbp = int(self.rng.integers(72, 89))
            dbp = int(min(dbp, sbp - 20))
            self._truth(ts, artefact="cuff_low", sbp=sbp)
        self.staff.see_nibp(ts, sbp)
        return {"sbp": sbp, "dbp": dbp, "map": int(round((sbp + 2 * dbp) / 3))}

    def _round(self, ts: float, s) -> dict:
        temp = round(float(s.temp_c + self.rng.normal(0, 0.08)), 1)
        self.staff.see_temp(ts, temp)
        return {"temp_c": temp, "acvpu": s.acvpu}

    def _vitals(self, ts: float, values: dict) -> None:
        fast = {k: values.pop(k) for k in ("hr", "spo2", "rr") if k in values}
        fast, hits = self.plan.apply(ts, fast)
        values = {**fast, **values}
        acvpu = values.pop("acvpu", None) if self.protocol != "json" else None
        if acvpu is not None:
            body = {"ts": iso(ts), "type": "neuro", "acvpu": acvpu}
            self._send(ts, ts, "care", orjson.dumps(body), care=True)
        if not values:
            return
        self._evidence_of(ts, values, hits)
        obs = Observation(ts, values)
        kind = PROTOCOLS[self.protocol]
        if self.protocol == "json":
            payload = to_json([obs])
        elif self.protocol == "fhir":
            payload = to_fhir([obs], self.patient.patient_id)
        else:
            self._msg_no += 1
            payload = to_hl7(
                [obs], self.patient.patient_id, self.ward, self.bed, f"{self.bed}-{self._msg_no}"
            )
        if self._send(ts, ts, kind, payload) and self.plan.take_duplicate(ts):
            self._send(ts, ts, kind, payload)
            self._truth(ts, artefact="duplicate", topic=f"{self.base}/{kind}")

    def _evidence_of(self, ts: float, values: dict, hits: list[str]) -> None:
        """What these readings show the ward of the patient, when they reach it (none if
        lost). An SpO2 sample an artefact made (a probe slipping, motion: `hits`) shows the
        probe, not the patient: it is not evidence of hypoxaemia (docs/evaluation.md)."""
        if self.plan.active("offline", ts) is not None:
            return
        late = self.plan.active("late", ts)
        at = late.end if late is not None else ts
        ev, found = self.evidence, []
        if "spo2" in values and not ARTEFACT_SPO2.intersection(hits):
            found += ev.spo2_sample(at, values["spo2"])
        if "sbp" in values:
            found += ev.cuff(at, values["sbp"], values.get("map"))
        if "temp_c" in values:
            found += ev.temp(at, values["temp_c"], self._crs_fever)
        self._onsets(found)
