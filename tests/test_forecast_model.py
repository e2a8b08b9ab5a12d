"""forecast.model: the estimator contract (STYLE.md, river) and the explanations.

The contract runs over every estimator we ship or build: an untrained model, one trained
here on synthetic data, and the shipped forecast/model.pkl.
"""

from __future__ import annotations

import copy
import pickle
import random
from pathlib import Path

import pytest

from forecast.model import DIRECTION, ForecastModel, sentence
from forecast.training.train import fit

SHIPPED = Path(__file__).resolve().parent.parent / "forecast" / "model.pkl"


def synthetic(n: int = 3000, seed: int = 7) -> list[tuple[dict[str, float], int]]:
    """Risk rises with temperature and heart rate over baseline; some keys go missing."""
    rng = random.Random(seed)
    data = []
    for _ in range(n):
        x = {
            "temp_c": rng.gauss(37.3, 0.8),
            "hr_delta": rng.gauss(5, 12),
            "age": rng.uniform(20, 80),
            "sbp": rng.gauss(115, 12),
        }
        if rng.random() < 0.2:
            del x["hr_delta"]
        logit = -4 + 2.5 * (x["temp_c"] - 37.3) + 0.08 * x.get("hr_delta", 5)
        data.append((x, int(rng.random() < 1 / (1 + 2.718281828**-logit))))
    return data


def trained() -> ForecastModel:
    return fit(synthetic(), seed=1, epochs=1, version="synthetic")


ESTIMATORS = {
    "untrained": ForecastModel,
    "trained": trained,
    "shipped": lambda: ForecastModel.load(SHIPPED),
}
XS = [
    {"temp_c": 38.4, "hr_delta": 25.0, "age": 50.0, "sbp": 101.0},
    {"temp_c": 36.8},
    {},
    {"hr": 80.0, "unknown_feature": 3.0},
]


@pytest.fixture(params=sorted(ESTIMATORS))
def model(request) -> ForecastModel:
    return ESTIMATORS[request.param]()


def test_does_not_mutate_its_input(model):
    for x in XS:
        before = copy.deepcopy(x)
        model.predict_proba_one(x)
        model.explain(x)
        assert model.learn_one(x, 1) is None
        assert x == before


def test_predicts_a_probability(model):
    for x in XS:
        p = model.predict_proba_one(x)
        assert isinstance(p, float) and 0.0 < p < 1.0


def test_survives_pickling(model, tmp_path):
    for x, y in synthetic(200, seed=3):
        model.learn_one(x, y)
    copies = [pickle.loads(pickle.dumps(model)), ForecastModel.from_bytes(model.to_bytes())]
    model.save(tmp_path / "m.pkl")
    copies.append(ForecastModel.load(tmp_path / "m.pkl"))
    for other in copies:
        assert other.version == model.version and other.n_learned == model.n_learned
        for x in XS + [x for x, _ in synthetic(50, seed=4)]:
            assert other.predict_proba_one(x) == model.predict_proba_one(x)
            assert other.explain(x) == model.explain(x)


def test_tolerates_a_missing_feature(model):
    full = {"temp_c": 38.4, "hr_delta": 25.0, "age": 50.0, "sbp": 101.0}
    for name in full:
        x = {k: v for k, v in full.items() if k != name}
        assert 0.0 < model.predict_proba_one(x) < 1.0
        model.learn_one(x, 0)


def test_same_output_for_the_same_seed_and_data():
    a = fit(synthetic(), seed=5, epochs=2, version="a")
    b = fit(synthetic(), seed=5, epochs=2, version="a")
    assert a.to_bytes() == b.to_bytes()
    for x in XS:
        assert a.predict_proba_one(x) == b.predict_proba_one(x)


def test_load_refuses_what_is_not_a_model(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"format": 999}))
    with pytest.raises(ValueError):
        ForecastModel.load(path)


def test_learning_moves_the_risk_toward_the_labels():
    m = trained()
    hot, cool = {"temp_c": 39.2, "hr_delta": 30.0}, {"temp_c": 36.6, "hr_delta": -2.0}
    assert m.predict_proba_one(hot) > 0.3 > 0.05 > m.predict_proba_one(cool)


def test_explanations_name_the_top_features_in_order():
    m = trained()
    x = {"temp_c": 39.4, "hr_delta": 31.0, "age": 50.0, "sbp": 115.0}
    terms = m.contributions(x)
    top = m.top_features(x)
    assert top[:2] == ["temp_c", "hr_delta"]
    assert terms["temp_c"] > terms["hr_delta"] > 0.1
    assert m.explain(x)[:2] == ["temperature 39.4 C", "heart rate +31 over baseline"]


def test_nothing_to_explain_in_a_calm_patient():
    m = trained()
    assert m.explain({"temp_c": 36.5, "hr_delta": -3.0}) == []


def test_a_weight_against_the_clinical_direction_is_never_a_reason():
    m = trained()
    m.linear._weights["sbp"] = 0.8  # higher systolic "raises" risk: a correlation artefact
    x = {"temp_c": 36.5, "sbp": 150.0}
    assert m.contributions(x)["sbp"] > 0.1
    assert "sbp" not in m.top_features(x)
    assert DIRECTION["sbp"] == -1


@pytest.mark.parametrize(
    "name, value, text",
    [
        ("temp_slope", 0.8, "temperature rising 0.8 C/h"),
        ("temp_slope", -0.34, "temperature falling 0.3 C/h"),
        ("hr_delta", 28.2, "heart rate +28 over baseline"),
        ("sbp_delta", -24.0, "systolic -24 mmHg from baseline"),
        ("o2_level", 1.0, "on low-flow oxygen"),
        ("autoimmune", 0.0, "oncology indication"),
        ("mystery", 2.5, "mystery 2.5"),
    ],
)
def test_sentences(name, value, text):
    assert sentence(name, value) == text
