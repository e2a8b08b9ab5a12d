"""The daemon's side of the forecast (forecast/): load the model, restore what the ward
taught it, hand it every assessment, and save it with its pending examples atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from forecast.model import ForecastModel
from forecast.service import Forecaster
from monitor.config import Config

ROOT = Path(__file__).resolve().parents[2]


def load_forecaster(cfg: Config, conn: sqlite3.Connection) -> Forecaster:
    path = Path(cfg["forecast.model_path"])
    model = ForecastModel.load(path if path.is_absolute() else ROOT / path)
    forecaster = Forecaster(
        model, interval_s=cfg["forecast.interval_s"], learn=cfg["forecast.learn"]
    )
    rows = [
        {"kind": k, "key": key, "data": orjson.loads(data)}
        for k, key, data in conn.execute("SELECT kind, key, data FROM forecast_state")
    ]
    if rows:
        forecaster.restore(rows)
    return forecaster


def save_rows(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Replace the saved state (inside the writer's transaction): a snapshot is either still
    pending or already in the model, never both, never neither."""
    conn.execute("DELETE FROM forecast_state")
    conn.executemany(
        "INSERT INTO forecast_state (kind, key, data) VALUES (?, ?, ?)",
        [(r["kind"], r["key"], orjson.dumps(r["data"]).decode()) for r in rows],
    )
