"""Online forecast of CRS escalation: P(CRS grade >= 2 within 12 h) for each admitted patient
below grade 2, from one shared river model that keeps learning from the ward.

Modules, one concept each:
- features.py  per-patient features, incremental, no future, gated own baselines
- model.py     the shared estimator (StandardScaler | LogisticRegression), explanations,
               save/load
- labels.py    delayed labels: a snapshot every 30 min, learned once its outcome is known
- quality.py   delayed progressive validation (AUROC, Brier, calibration)
- service.py   Forecaster: what the daemon calls (observe, advance, discharge, rows)
- simdata.py, train.py, evaluate.py: the cold-start model from simulated cohorts, and its
  held-out evaluation (MODEL.md has the figures)

Not clinically validated: trained and evaluated on simulated patients only (MODEL.md).
"""

from .model import ForecastModel
from .service import Forecaster

__all__ = ["ForecastModel", "Forecaster"]
