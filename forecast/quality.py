"""Delayed progressive validation: each snapshot's prediction, made when the snapshot was
taken, is scored when its label arrives (hours later), before the model learns from it.

So the figures say how good the forecasts shown to staff were, not how well the model fits
what it has already seen. AUROC is river's `metrics.ROCAUC` (its ROC curve is discretised
on N_THRESHOLDS evenly spaced thresholds: fine enough for the small probabilities of a rare
event); the Brier score is the mean squared error of the probability; calibration compares,
in five bins of predicted probability (CAL_EDGES: narrow at the low end, where most
predictions of a rare event fall), the mean prediction with the observed rate.
The state is a few hundred numbers; `to_row()`/`from_row()` persist it as JSON.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from river import metrics

N_THRESHOLDS = 101
CAL_EDGES = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
CAL_BINS = len(CAL_EDGES) - 1


class Quality:
    def __init__(self) -> None:
        self.auc = metrics.ROCAUC(n_thresholds=N_THRESHOLDS)
        self.n = 0
        self.positives = 0
        self.sq_error = 0.0
        self.bins = [[0, 0.0, 0] for _ in range(CAL_BINS)]  # [count, sum p, sum y]

    def update(self, y: int, p: float) -> None:
        """Score one prediction p (made at snapshot time) against its label y."""
        y = int(bool(y))
        self.auc.update(bool(y), p)
        self.n += 1
        self.positives += y
        self.sq_error += (p - y) ** 2
        b = self.bins[min(CAL_BINS - 1, max(0, bisect_right(CAL_EDGES, p) - 1))]
        b[0] += 1
        b[1] += p
        b[2] += y

    @property
    def auroc(self) -> float | None:
        """None until both classes have been seen (AUROC is undefined before)."""
        if self.positives == 0 or self.positives == self.n:
            return None
        return float(self.auc.get())

    @property
    def brier(self) -> float | None:
        return self.sq_error / self.n if self.n else None

    def calibration(self) -> list[dict[str, Any]]:
        out = []
        for i, (count, sum_p, sum_y) in enumerate(self.bins):
            out.append(
                {
                    "bin": f"{CAL_EDGES[i]:g}-{CAL_EDGES[i + 1]:g}",
                    "n": count,
                    "predicted": sum_p / count if count else None,
                    "observed": sum_y / count if count else None,
                }
            )
        return out

    def report(self) -> dict[str, Any]:
        return {
            "scored": self.n,
            "positives": self.positives,
            "auroc": self.auroc,
            "brier": self.brier,
            "calibration": self.calibration(),
        }

    # -- persistence -----------------------------------------------------------------------

    def to_row(self) -> dict[str, Any]:
        cms = [
            [
                cm.true_positives(True),
                cm.false_positives(True),
                cm.true_negatives(True),
                cm.false_negatives(True),
            ]
            for cm in self.auc.cms
        ]
        return {
            "kind": "quality",
            "key": "quality",
            "data": {
                "n": self.n,
                "positives": self.positives,
                "sq_error": self.sq_error,
                "bins": self.bins,
                "roc": cms,
            },
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Quality:
        d = row["data"]
        q = cls()
        q.n, q.positives, q.sq_error = int(d["n"]), int(d["positives"]), float(d["sq_error"])
        q.bins = [[int(c), float(s), int(y)] for c, s, y in d["bins"]]
        if len(d["roc"]) != len(q.auc.cms):
            raise ValueError("quality row: another number of ROC thresholds")
        for cm, (tp, fp, tn, fn) in zip(q.auc.cms, d["roc"], strict=True):
            for truth, said, w in (
                (True, True, tp),
                (False, True, fp),
                (False, False, tn),
                (True, False, fn),
            ):
                if w:
                    cm.update(truth, said, w)
        return q
