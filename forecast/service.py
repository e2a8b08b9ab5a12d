"""The forecast service: risk of CRS grade >= 2 within the horizon, for every patient below
grade 2, refreshed at every assessment, learning from the ward as labels come due.

Clock-free: every call takes the time it is about (the assessment's time). The daemon calls

    risk = forecaster.observe(admission_id, a.snapshot, a, a.at)   # after each assessment
    forecaster.advance(now)              # from the ward tick: expire horizons of quiet beds
    forecaster.discharge(admission_id, ts)
    rows = forecaster.to_rows()          # persist (all rows, one transaction)
    forecaster.restore(rows)             # at start-up, before the first observe

`observe` returns {"p", "p_model", "cohort", "alert", "alert_reason", "explanation", "model",
"horizon_h"} or None (grade >= 2, not enough data yet, or a time older than the patient's
last). `p` is the model's `p_model` calibrated on the patient's cohort (calibration.py);
`alert` says whether the risk may raise an alert now, `alert_reason` why (policy.py: risk
episodes). A grade >= 2 labels the pending snapshots only once confirmed (policy.py).
"Below grade 2" includes an undecided grade whose lowest possibility (`crs.at_least`) is
below 2; an undecided grade that is at least 2 counts as grade 2. Pass the present
assessment's `at` as t (Ward.reassess), not the past-time assessments of late readings
(they would be ignored). Use the admission id as the patient key: a new admission starts
afresh. As a side effect it takes a snapshot every `interval_s` (labels.py) and learns the
snapshots whose label has come: each is first scored with the prediction made when it was
taken (quality.py), then learned, exactly once.

Rows (`to_rows`): JSON-serialisable dicts {"kind", "key", "data"}, (kind, key) unique:
  model    "model"        {"format", "version", "n_learned", "pickle_b64"}
  quality  "quality"      {"n", "positives", "sq_error", "bins", "roc"}
  patient  admission id   PatientFeatures.to_dict()
  risk     admission id   policy.PatientRisk (cohort, grade-2 run, risk episode)
  pending  "<id>@<t>"     {"patient", "t", "x": {feature: value}, "p"}
The model row carries the per-cohort calibration (inside the pickle).
The model row and the pending rows must be written together (one transaction, replacing
the previous set): a snapshot is then either still pending or already in the model, so a
restart neither loses learning nor learns twice.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from .calibration import group_of
from .features import PatientFeatures
from .labels import Labelled, Labels, Pending, unpack
from .model import ForecastModel
from .policy import ALERT_P, RECUR_S, PatientRisk, confirmed, risk_gate
from .quality import Quality


def grade2(crs: Any) -> bool:
    """CRS grade >= 2 now: decided, or undecided with 2 the lowest possible."""
    return (getattr(crs, "at_least", None) or 0) >= 2


class Forecaster:
    def __init__(
        self,
        model: ForecastModel,
        interval_s: float = 1800.0,
        horizon_s: float = 43200.0,
        min_data_s: float = 3600.0,
        learn: bool = True,
        on_label: Callable[[Pending, int], None] | None = None,
        alert_p: float = ALERT_P,
    ):
        self.model = model
        self.labels = Labels(interval_s, horizon_s)
        self.horizon_s = float(horizon_s)
        self.min_data_s = float(min_data_s)
        self.learn = learn  # False: score labels, never learn (evaluation, shadow mode)
        self.on_label = on_label  # called with each labelled snapshot (training, tests)
        self.patients: dict[str, PatientFeatures] = {}
        self.risk: dict[str, float] = {}  # the latest p per patient below grade 2
        self.metrics = Quality()  # delayed progressive validation
        self.learned = 0  # snapshots learned by this process
        self.alert_p = float(alert_p)  # the calibrated p a risk episode starts at (policy.py)
        self.state: dict[str, PatientRisk] = {}  # cohort, grade-2 run, risk episode

    def observe(
        self, patient_key: str, snapshot: Any, assessment: Any, t: float
    ) -> dict[str, Any] | None:
        """Fold in one assessment (monitor.state.assessment.Assessment) of the patient at t;
        `snapshot` None means assessment.snapshot."""
        s = assessment.snapshot if snapshot is None else snapshot
        f = self.patients.get(patient_key)
        if f is None:
            f = self.patients[patient_key] = PatientFeatures(assessment.admission)
        elif f.last_t is not None and t < f.last_t:
            return None  # the state never runs backwards; a late reading's past is past
        st = self.state.get(patient_key)
        if st is None:
            adm = assessment.admission
            group = group_of(getattr(adm, "indication", None), getattr(adm, "product", None))
            st = self.state[patient_key] = PatientRisk(group)
        n = assessment.news2
        temp = (assessment.vitals or {}).get("temp_c")
        x = f.update(
            s,
            t,
            news2=n.total if n is not None and n.complete else None,
            temp_ts=temp.ts if temp is not None else None,
        )
        if grade2(assessment.crs):
            if st.g2_since is None:
                st.g2_since = t
                if st.g2_first is None or t - st.g2_first > RECUR_S:
                    st.g2_first = t
            if not st.g2_confirmed and confirmed(st, s, t):
                # a grade 2 that persisted, came back, or that care confirmed teaches the
                # model, as of when it first began; one that did not is not learned (policy.py)
                st.g2_confirmed = st.g2_ever = True
                self._labelled(self.labels.reached(patient_key, st.g2_first or st.g2_since))
                f.prior_grade2 = True
            st.alert = False
            self.risk.pop(patient_key, None)
            return None
        if st.g2_confirmed or (st.g2_first is not None and t - st.g2_first > RECUR_S):
            st.g2_first = None  # an unconfirmed grade 2 is forgotten once it cannot recur
        st.g2_since, st.g2_confirmed = None, False
        # while an unconfirmed grade 2 may still recur, only horizons that ended before it
        # are known to be 0
        until = t if st.g2_first is None else min(t, st.g2_first)
        self._labelled(self.labels.expire(patient_key, until))
        if f.data_s(t) < self.min_data_s or not ("hr" in x or "temp_c" in x):
            self.risk.pop(patient_key, None)
            return None
        p_model = self.model.predict_proba_one(x)
        cal = getattr(self.model, "calibration", None)  # None: a model without (tests)
        p = p_model if cal is None else cal.apply(st.group, p_model)
        self.risk[patient_key] = p
        self.labels.take(patient_key, t, x, p)
        alert, why = risk_gate(st, p, t, self.alert_p)
        h = self.horizon_s / 3600
        return {
            "p": round(p, 4),
            "p_model": round(p_model, 4),
            "cohort": st.group,
            "alert": alert,
            "alert_reason": why,
            "explanation": self.model.explain(x),
            "model": self.model.version,
            "horizon_h": int(h) if h == int(h) else h,
        }

    def advance(self, t: float) -> int:
        """Label 0 every snapshot whose horizon has passed by t (patients with no recent
        assessment; not a patient at a grade 2 not yet confirmed: its label may be 1);
        returns how many were learned."""
        out = 0
        for patient in list(self.labels.pending):
            st = self.state.get(patient)
            if st is None or st.g2_first is None:
                out += self._labelled(self.labels.expire(patient, t))
        return out

    def discharge(self, patient_key: str, t: float) -> None:
        """The admission ended at t: horizons passed are labelled 0, the rest censored."""
        self._labelled(self.labels.discharge(patient_key, t))
        self.patients.pop(patient_key, None)
        self.risk.pop(patient_key, None)
        self.state.pop(patient_key, None)

    def _labelled(self, labelled: Labelled) -> int:
        for snap, y in labelled:
            if snap.p is not None:
                self.metrics.update(y, snap.p)
            if self.on_label is not None:
                self.on_label(snap, y)
            if self.learn:
                x = unpack(snap.x)
                st = self.state.get(snap.patient)
                cal = getattr(self.model, "calibration", None)
                if cal is not None:
                    # the cohort's calibration learns the model's p as it is now (before
                    # this label moves the model), then the model learns
                    cal.learn_one(st.group if st else "unknown", self.model.predict_proba_one(x), y)
                self.model.learn_one(x, y)
                self.learned += 1
        return len(labelled) if self.learn else 0

    # -- reporting -------------------------------------------------------------------------

    def quality(self) -> dict[str, Any]:
        """Delayed progressive validation so far: {"scored", "positives", "auroc", "brier",
        "calibration": [{"bin", "n", "predicted", "observed"}, ...]} (None: not known yet)."""
        return self.metrics.report()

    def gauges(self) -> dict[str, float]:
        """Flat name -> float for /metrics (NaN: not known yet)."""
        q = self.metrics
        nan = float("nan")
        out = {
            "forecast_patients": float(len(self.patients)),
            "forecast_patients_at_risk": float(sum(p >= ALERT_P for p in self.risk.values())),
            "forecast_pending_snapshots": float(self.labels.count()),
            "forecast_model_learned_total": float(self.model.n_learned),
            "forecast_learned_total": float(self.learned),
            "forecast_censored_total": float(self.labels.censored),
            "forecast_scored_total": float(q.n),
            "forecast_scored_positive_total": float(q.positives),
            "forecast_auroc": nan if q.auroc is None else q.auroc,
            "forecast_brier": nan if q.brier is None else q.brier,
        }
        for i, b in enumerate(q.calibration()):
            out[f"forecast_calibration_bin{i}_n"] = float(b["n"])
            out[f"forecast_calibration_bin{i}_predicted"] = (
                nan if b["predicted"] is None else b["predicted"]
            )
            out[f"forecast_calibration_bin{i}_observed"] = (
                nan if b["observed"] is None else b["observed"]
            )
        return out

    # -- persistence -----------------------------------------------------------------------

    def to_rows(self) -> list[dict[str, Any]]:
        m = self.model
        rows = [
            {
                "kind": "model",
                "key": "model",
                "data": {
                    "format": 1,
                    "version": m.version,
                    "n_learned": m.n_learned,
                    "pickle_b64": base64.b64encode(m.to_bytes()).decode("ascii"),
                },
            },
            self.metrics.to_row(),
        ]
        rows += [
            {"kind": "patient", "key": k, "data": f.to_dict()} for k, f in self.patients.items()
        ]
        rows += [{"kind": "risk", "key": k, "data": st.to_dict()} for k, st in self.state.items()]
        return rows + self.labels.to_rows()

    def restore(self, rows: Iterable[dict[str, Any]]) -> None:
        """Replace the state with `rows` (from to_rows). Without a model row the current
        model stays (e.g. the shipped one, on a first start)."""
        rows = list(rows)
        for r in rows:
            if r["kind"] == "model":
                self.model = ForecastModel.from_bytes(base64.b64decode(r["data"]["pickle_b64"]))
            elif r["kind"] == "quality":
                self.metrics = Quality.from_row(r)
        self.patients = {
            r["key"]: PatientFeatures.from_dict(r["data"]) for r in rows if r["kind"] == "patient"
        }
        self.state = {
            r["key"]: PatientRisk.from_dict(r["data"]) for r in rows if r["kind"] == "risk"
        }
        self.labels.load_rows(rows)
        self.risk = {}
