"""The shipped cold-start model (forecast/model.pkl) and its card (forecast/MODEL.md)."""

from __future__ import annotations

from pathlib import Path

from forecast.model import ONLINE_LEARNING_RATE, ForecastModel
from forecast.service import Forecaster
from tests.test_forecast_service import T0, Bed, H, calm, ward

FORECAST = Path(__file__).resolve().parent.parent / "forecast"


def brewing(h: float) -> dict:
    """Calm for 3 h, then fever rising 0.4 C/h with a climbing heart rate."""
    v = calm(h)
    if h > 3:
        v.update(temp_c=round(37.0 + 0.4 * (h - 3), 1), hr=80 + 10 * (h - 3), rr=19)
    return v


def test_shipped_model_loads_and_is_small():
    m = ForecastModel.load(FORECAST / "model.pkl")
    assert m.version and m.version != "untrained"
    assert m.n_learned > 10_000
    assert (FORECAST / "model.pkl").stat().st_size < 20_000


def test_rising_fever_and_tachycardia_score_above_a_calm_patient():
    fc = Forecaster(ForecastModel.load(FORECAST / "model.pkl"), learn=False)
    risks = ward(fc, [Bed("calm", calm), Bed("sick", brewing)], T0, T0 + 7 * H)
    calm_r, sick_r = risks["calm"][-1][1], risks["sick"][-1][1]
    assert sick_r["p"] > 2 * calm_r["p"]
    assert sick_r["p"] > 0.2 and calm_r["p"] < 0.1
    said = " ".join(sick_r["explanation"])
    assert "temperature" in said or "heart rate" in said or "fever" in said


def test_model_card_names_the_shipped_model():
    card = (FORECAST / "MODEL.md").read_text()
    m = ForecastModel.load(FORECAST / "model.pkl")
    assert m.version in card
    assert "not clinically validated" in card.lower()
    assert "python -m forecast.training.train" in card
    assert "python -m forecast.training.evaluate" in card


def test_shipped_model_learns_online_at_the_slow_rate():
    assert ForecastModel.load(FORECAST / "model.pkl").learning_rate == ONLINE_LEARNING_RATE
