"""Per-cohort calibration of the shared model's probability (issue 18: "the risk shown on a
tile must be calibrated on the cohort it is shown for").

One model serves every patient, but how often CRS grade >= 2 comes differs about tenfold
between cohorts (simulated hourly positives: lymphoma ~0.05, myeloma ~0.03, autoimmune
~0.004), so one probability cannot be right for all of them. Each cohort gets its own Platt
scaling of the model's log-odds:

    p_shown = sigmoid(a * logit(p_model) + b),   a >= A_MIN > 0

monotone increasing in p_model (the ranking, hence AUROC within a cohort, is the model's),
fitted offline on the training seeds (`python -m forecast.training.calibrate`, MODEL.md) and
then learning online, slowly, from the ward's own delayed labels (a step of logistic
regression on the two parameters, the same labels the model learns). The parameters travel
inside the model (ForecastModel.calibration), so they are saved with the model row and a
restart loses nothing.

Cohorts (`group_of`): "autoimmune", "myeloma" (the indication says myeloma, or a BCMA
product), "lymphoma" (every other oncology indication: lymphomas and leukaemias), "unknown"
(neither can be told). An unfitted cohort uses the identity (a=1, b=0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from .features import cohort

GROUPS = ("lymphoma", "myeloma", "autoimmune", "unknown")
A_MIN = 0.05  # the slope stays positive: calibration never reverses the model's ranking
A_MAX = 5.0  # ... and never turns it into a step
EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before the logit
ONLINE_RATE = 0.001  # step of the online update (labels come in bursts, as for the model)
PRIOR = 1.0  # ridge towards the identity (a=1, b=0) in the offline fit, per parameter
MYELOMA_PRODUCTS = ("idecabtagene", "ciltacabtagene", "ide-cel", "cilta-cel")
_WORD = re.compile(r"[a-z]+")


def group_of(indication: str | None, product: str | None) -> str:
    """The calibration cohort of an admission (module docstring)."""
    words = set(_WORD.findall((indication or "").lower()))
    if "myeloma" in words:
        return "myeloma"
    c = cohort(indication, product)
    if c == 1.0:
        return "autoimmune"
    if c == 0.0:
        name = (product or "").lower()
        if not words and any(m in name for m in MYELOMA_PRODUCTS):
            return "myeloma"
        return "lymphoma"
    return "unknown"


def logit(p: float) -> float:
    p = min(1.0 - EPS, max(EPS, p))
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def fit_platt(pairs: Iterable[tuple[float, int]], prior: float = PRIOR) -> tuple[float, float]:
    """(a, b) maximising the log-likelihood of y ~ sigmoid(a*logit(p) + b), with a ridge of
    weight `prior` towards (1, 0) (a small cohort stays near the model), a in [A_MIN, A_MAX],
    by damped Newton steps (halved until the objective improves). Deterministic."""
    data = [(logit(p), int(bool(y))) for p, y in pairs]

    def loss(a: float, b: float) -> float:
        out = 0.5 * prior * ((a - 1.0) ** 2 + b * b)
        for z, y in data:
            u = a * z + b
            # log(1 + e^u) - y*u, computed stably
            out += (u if u > 0 else 0.0) + math.log1p(math.exp(-abs(u))) - y * u
        return out

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(100):
        ga, gb = prior * (a - 1.0), prior * b
        haa, hab, hbb = prior, 0.0, prior
        for z, y in data:
            q = sigmoid(a * z + b)
            r = q - y
            w = q * (1.0 - q)
            ga += r * z
            gb += r
            haa += w * z * z
            hab += w * z
            hbb += w
        det = haa * hbb - hab * hab
        if det <= 0:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        step = 1.0
        while step > 1e-6:
            na = min(A_MAX, max(A_MIN, a - step * da))
            nb = b - step * db
            new = loss(na, nb)
            if new <= current:
                break
            step /= 2
        else:
            break
        moved = abs(na - a) + abs(nb - b)
        a, b, current = na, nb, new
        if moved < 1e-9:
            break
    return a, b


class Calibration:
    """Per-cohort (a, b); `n` counts the labels each cohort was fitted or updated on."""

    def __init__(self, params: dict[str, tuple[float, float]] | None = None):
        self.params: dict[str, tuple[float, float]] = dict(params or {})
        self.n: dict[str, int] = {}
        self.rate = ONLINE_RATE

    def apply(self, group: str, p: float) -> float:
        """The calibrated probability of the model's `p` for a patient of `group`."""
        a, b = self.params.get(group, (1.0, 0.0))
        if a == 1.0 and b == 0.0:
            return p
        return sigmoid(a * logit(p) + b)

    def fit(self, group: str, pairs: list[tuple[float, int]]) -> None:
        self.params[group] = fit_platt(pairs)
        self.n[group] = len(pairs)

    def learn_one(self, group: str, p: float, y: int) -> None:
        """One online step of the log-loss on (a, b) for the model's `p` and label y."""
        a, b = self.params.get(group, (1.0, 0.0))
        z = logit(p)
        r = sigmoid(a * z + b) - int(bool(y))
        self.params[group] = (max(A_MIN, a - self.rate * r * z), b - self.rate * r)
        self.n[group] = self.n.get(group, 0) + 1

    # -- persistence (plain data, inside the model's pickle) --------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {g: list(ab) for g, ab in sorted(self.params.items())},
            "n": dict(sorted(self.n.items())),
            "rate": self.rate,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Calibration:
        c = cls({g: (float(a), float(b)) for g, (a, b) in (d or {}).get("params", {}).items()})
        c.n = {g: int(n) for g, n in (d or {}).get("n", {}).items()}
        c.rate = float((d or {}).get("rate", ONLINE_RATE))
        return c
