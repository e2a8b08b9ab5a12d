"""The shared forecast model: one river pipeline for the whole ward, learning online.

`preprocessing.StandardScaler() | linear_model.LogisticRegression()`: small (a few KB),
fast (microseconds per call), and explainable: the log-odds are a sum of one term per
feature (weight x scaled value), so the largest terms are the reasons shown.

`ForecastModel` wraps it with the interface the service needs: `learn_one(x, y)`,
`predict_proba_one(x) -> float` (P(CRS grade >= 2 within the horizon)), `explain(x)`,
and save/load (pickle with a format number and a version string).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from river import linear_model, optim, preprocessing

from .calibration import Calibration

FORMAT = 1  # of the saved file; load() refuses another
LEARNING_RATE = 0.01  # cold start: many shuffled snapshots
# Online, after the cold start: labels come in bursts (every snapshot of a patient at once
# when grade 2 arrives), and at 0.01 the ward's latest patient pulls the weights about:
# on held-out simulated wards (MODEL.md) online learning at 0.01 cut AUROC from 0.92 to
# 0.86; at 0.0003 it gained a little (0.922 vs 0.919, 0.904 vs 0.899).
ONLINE_LEARNING_RATE = 0.0003
L2 = 1e-4
MIN_CONTRIBUTION = 0.1  # log-odds: smaller terms are not worth a sentence
O2_NAMES = ("room air", "low-flow oxygen", "high-flow oxygen or a mask", "positive pressure")


def _signed(v: float, digits: int = 0) -> str:
    return f"{v:+.{digits}f}"


# feature -> sentence from its raw value
SENTENCES = {
    "temp_slope": lambda v: f"temperature {'rising' if v >= 0 else 'falling'} {abs(v):.1f} C/h",
    "temp_c": lambda v: f"temperature {v:.1f} C",
    "temp_max": lambda v: f"maximum temperature {v:.1f} C",
    "febrile": lambda v: "febrile now" if v else "not febrile now",
    "fever_ever": lambda v: "fever recorded" if v else "no fever yet",
    "hours_since_fever": lambda v: f"first fever {v:.0f} h ago",
    "hr": lambda v: f"heart rate {v:.0f} /min",
    "hr_delta": lambda v: f"heart rate {_signed(v)} over baseline",
    "sbp": lambda v: f"systolic {v:.0f} mmHg",
    "sbp_delta": lambda v: f"systolic {_signed(v)} mmHg from baseline",
    "map_delta": lambda v: f"mean pressure {_signed(v)} mmHg from baseline",
    "shock_index": lambda v: f"shock index {v:.2f}",
    "spo2": lambda v: f"SpO2 {v:.0f} %",
    "o2_level": lambda v: f"on {O2_NAMES[min(3, max(0, int(v)))]}",
    "pressor": lambda v: "on a vasopressor" if v else "no vasopressor",
    "rr": lambda v: f"respiration {v:.0f} /min",
    "news2": lambda v: f"NEWS2 {v:.0f}",
    "hours_since_infusion": lambda v: f"{v:.0f} h after infusion (day {v / 24:.1f})",
    "age": lambda v: f"age {v:.0f}",
    "autoimmune": lambda v: "autoimmune indication" if v else "oncology indication",
    "prior_grade2": lambda v: (
        "CRS grade 2 earlier in this admission" if v else "no CRS grade 2 so far"
    ),
}


# The clinically expected direction of risk: +1 higher is worse, -1 lower is worse. A
# feature listed here is given as a reason only when its weight agrees (then a positive
# term means its value is on the worse side of the ward's mean). Correlated features
# (systolic and its delta, heart rate and the shock index) share their effect, and a
# weight may come out against the direction as a correction of its neighbour's: such a
# term still counts in p, but "systolic +8 mmHg from baseline" is no reason to worry.
DIRECTION = {
    "temp_c": 1,
    "temp_max": 1,
    "temp_slope": 1,
    "febrile": 1,
    "fever_ever": 1,
    "hr": 1,
    "hr_delta": 1,
    "sbp": -1,
    "sbp_delta": -1,
    "map_delta": -1,
    "shock_index": 1,
    "spo2": -1,
    "o2_level": 1,
    "pressor": 1,
    "rr": 1,
    "news2": 1,
    "prior_grade2": 1,
}


def sentence(name: str, value: float) -> str:
    make = SENTENCES.get(name)
    return make(value) if make else f"{name} {value:g}"


def make_pipeline(lr: float = LEARNING_RATE, l2: float = L2):
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.SGD(lr), l2=l2
    )


class ForecastModel:
    """One shared estimator. `version` names the trained model (shown with every risk)."""

    def __init__(self, version: str = "untrained", pipeline: Any = None):
        self.version = version
        self.pipeline = make_pipeline() if pipeline is None else pipeline
        self.n_learned = 0  # learn_one calls since it was built (training and online)
        # per-cohort calibration of predict_proba_one (calibration.py): saved with the model
        self.calibration = Calibration()

    @property
    def scaler(self) -> preprocessing.StandardScaler:
        return self.pipeline["StandardScaler"]

    @property
    def linear(self) -> linear_model.LogisticRegression:
        return self.pipeline["LogisticRegression"]

    @property
    def learning_rate(self) -> float:
        return float(self.linear.optimizer.learning_rate)

    def set_learning_rate(self, lr: float) -> None:
        """The step of every later learn_one (weights and intercept)."""
        self.linear.optimizer = optim.SGD(lr)
        self.linear.intercept_lr = optim.schedulers.Constant(lr)

    def learn_one(self, x: dict[str, float], y: bool | int) -> None:
        self.pipeline.learn_one(x, bool(y))
        self.n_learned += 1

    def predict_proba_one(self, x: dict[str, float]) -> float:
        """The model's own probability (the same for every cohort): not what is shown."""
        return float(self.pipeline.predict_proba_one(x).get(True, 0.0))

    def contributions(self, x: dict[str, float]) -> dict[str, float]:
        """Per feature present in x: weight x scaled value (its share of the log-odds)."""
        z = self.scaler.transform_one(x)
        w = self.linear.weights
        return {k: w.get(k, 0.0) * v for k, v in z.items()}

    def explain(self, x: dict[str, float], k: int = 3) -> list[str]:
        """The k features that raise the risk most (by their share of the log-odds, at
        least MIN_CONTRIBUTION, weight in the clinical DIRECTION), as sentences; [] when
        nothing stands out."""
        return [sentence(name, x[name]) for name in self.top_features(x, k)]

    def top_features(self, x: dict[str, float], k: int = 3) -> list[str]:
        """The names behind explain(x), in the same order."""
        w = self.linear.weights
        terms = sorted(
            (
                (c, name)
                for name, c in self.contributions(x).items()
                if c >= MIN_CONTRIBUTION and w.get(name, 0.0) * DIRECTION.get(name, 1) > 0
            ),
            reverse=True,
        )
        return [name for _, name in terms[:k]]

    # -- persistence -----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return pickle.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "n_learned": self.n_learned,
                "pipeline": self.pipeline,
                "calibration": self.calibration.to_dict(),
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> ForecastModel:
        """Only from a trusted source (the shipped file, the daemon's own database):
        unpickling runs code."""
        data = pickle.loads(blob)  # our own file, never from the network
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a forecast model of format {FORMAT}")
        m = cls(data["version"], data["pipeline"])
        m.n_learned = int(data["n_learned"])
        # a file saved before calibration existed: every cohort at the identity
        m.calibration = Calibration.from_dict(data.get("calibration"))
        return m

    def save(self, path: str | Path) -> None:
        """Write atomically (a temporary file renamed over the old one)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> ForecastModel:
        return cls.from_bytes(Path(path).read_bytes())
