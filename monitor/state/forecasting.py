"""The daemon's side of the forecast (forecast/): load the model, restore what the ward
taught it, hand it every assessment, and save it with its pending examples atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from forecast.model import ForecastModel
from forecast.service import Forecaster
from monitor.config import Config
from monitor.store.reads import forecast_state_rows

ROOT = Path(__file__).resolve().parents[2]


def load_forecaster(cfg: Config, conn: sqlite3.Connection) -> Forecaster:
    path = Path(cfg["forecast.model_path"])
    model = ForecastModel.load(path if path.is_absolute() else ROOT / path)
    forecaster = Forecaster(
        model,
        interval_s=cfg["forecast.interval_s"],
        learn=cfg["forecast.learn"],
        # a risk episode opens where the risk alert is raised (forecast/policy.py)
        alert_p=cfg.alerting.risk_threshold,
    )
    rows = forecast_state_rows(conn)
    if rows:
        forecaster.restore(rows)
    return forecaster
