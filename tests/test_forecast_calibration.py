"""Per-cohort calibration (forecast/calibration.py) and the forecast's policy
(forecast/policy.py): which grade 2 teaches the model, and when a risk may alert."""

from __future__ import annotations

import json
import math
import random
from types import SimpleNamespace

import pytest

from alerts.rules import _risk
from devices.physiology import INDICATIONS
from forecast.calibration import A_MIN, Calibration, fit_platt, group_of
from forecast.model import ForecastModel
from forecast.policy import CONFIRM_S, RESET_S, PatientRisk, risk_gate
from forecast.service import Forecaster
from monitor.clinical.snapshot import Snapshot
from tests.test_forecast_service import T0, Bed, H, calm, ward

# -- cohorts -------------------------------------------------------------------------------


@pytest.mark.parametrize("cohort", sorted(INDICATIONS))
def test_every_simulated_indication_falls_in_its_own_cohort(cohort):
    for indication, _ in INDICATIONS[cohort]:
        assert group_of(indication, None) == cohort


def test_cohort_from_the_product_when_the_indication_says_nothing():
    assert group_of(None, "idecabtagene vicleucel") == "myeloma"
    assert group_of("", "tisagenlecleucel") == "lymphoma"
    assert group_of("B-ALL", None) == "lymphoma"  # leukaemias: with the lymphomas
    assert group_of("trial", "CD19 CAR-T (academic)") == "unknown"
    assert group_of(None, None) == "unknown"


# -- calibration ---------------------------------------------------------------------------


def sample(rate_at, n=4000, seed=7):
    """(model p, y) where the true rate at model p is rate_at(p)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = rng.betavariate(0.7, 8)
        out.append((p, int(rng.random() < rate_at(p))))
    return out


def test_an_unfitted_cohort_is_the_model_itself():
    c = Calibration()
    assert c.apply("lymphoma", 0.37) == 0.37


def test_a_rarer_cohort_is_calibrated_lower_and_the_ranking_is_kept():
    c = Calibration()
    c.fit("lymphoma", sample(lambda p: p))
    c.fit("autoimmune", sample(lambda p: p / 10))
    grid = [i / 100 for i in range(1, 100)]
    for g in ("lymphoma", "autoimmune"):
        shown = [c.apply(g, p) for p in grid]
        assert shown == sorted(shown) and len(set(shown)) == len(shown)  # strictly monotone
    assert abs(c.apply("lymphoma", 0.3) - 0.3) < 0.08
    assert c.apply("autoimmune", 0.3) < 0.1
    # mean predicted close to the observed rate in the cohort fitted on
    data = sample(lambda p: p / 10, seed=8)
    mean_p = sum(c.apply("autoimmune", p) for p, _ in data) / len(data)
    rate = sum(y for _, y in data) / len(data)
    assert abs(mean_p - rate) < 0.3 * rate + 0.003


def test_the_slope_never_reverses_the_model():
    a, _ = fit_platt(sample(lambda p: 1 - p))
    assert a == A_MIN


def test_online_learning_moves_the_cohort_towards_its_outcomes():
    c = Calibration()
    before = c.apply("myeloma", 0.4)
    for _ in range(200):
        c.learn_one("myeloma", 0.4, 0)
    assert c.apply("myeloma", 0.4) < before
    assert c.apply("lymphoma", 0.4) == 0.4  # another cohort is untouched
    assert c.n == {"myeloma": 200}


def test_calibration_is_saved_and_restored_with_the_model_row():
    m = ForecastModel("v-cal")
    m.calibration.fit("autoimmune", sample(lambda p: p / 10))
    back = ForecastModel.from_bytes(m.to_bytes())
    assert back.calibration.to_dict() == m.calibration.to_dict()
    fc = Forecaster(m)
    rows = json.loads(json.dumps(fc.to_rows()))
    other = Forecaster(ForecastModel("shipped"))
    other.restore(rows)
    assert other.model.calibration.params == m.calibration.params


def test_a_model_saved_before_calibration_loads_at_the_identity():
    import pickle

    m = ForecastModel("old")
    blob = pickle.dumps(
        {"format": 1, "version": "old", "n_learned": 0, "pipeline": m.pipeline},
    )
    assert ForecastModel.from_bytes(blob).calibration.params == {}


def test_the_risk_shown_is_the_patients_cohorts():
    m = ForecastModel("v")
    m.calibration.params["lymphoma"] = (1.0, -2.0)
    fc = Forecaster(m, learn=False)
    r = ward(fc, [Bed("a", calm)], T0, T0 + 2 * H)["a"][-1][1]
    assert r["cohort"] == "lymphoma"
    assert math.isclose(r["p"], m.calibration.apply("lymphoma", r["p_model"]), abs_tol=1e-4)
    assert r["p"] < r["p_model"]
    assert fc.risk["a"] == pytest.approx(r["p"], abs=1e-4)


# -- which grade 2 teaches the model -------------------------------------------------------


def assessment(at_least: int, snapshot: Snapshot | None = None):
    adm = SimpleNamespace(
        age=50, product="tisagenlecleucel", indication="DLBCL lymphoma", infusion_ts=T0
    )
    return SimpleNamespace(
        snapshot=snapshot or Snapshot(temp_c=38.5, hr=110, sbp=100, o2_device="room_air"),
        admission=adm,
        news2=None,
        vitals={},
        crs=SimpleNamespace(at_least=at_least),
    )


def run(grades: list[tuple[float, int, Snapshot | None]]):
    labelled = []
    fc = Forecaster(ForecastModel(), on_label=lambda s, y: labelled.append((s.t, y)))
    for t, g, s in grades:
        fc.observe("a", None, assessment(g, s), t)
    return fc, labelled


def test_a_short_grade_2_teaches_nothing():
    steps = [(T0 + k * 300, 1, None) for k in range(1, 30)]  # 2.5 h below grade 2
    blip = [(T0 + 9000 + k * 300, 2, None) for k in range(3)]  # 10 min of grade 2
    after = [(T0 + 10200 + k * 300, 1, None) for k in range(10)]
    fc, labelled = run(steps + blip + after)
    assert labelled == [] and fc.labels.count() > 0
    assert not fc.patients["a"].prior_grade2 and not fc.state["a"].g2_ever


def test_a_grade_2_that_lasts_teaches_as_of_its_start():
    steps = [(T0 + k * 300, 1, None) for k in range(1, 30)]
    g2 = [(T0 + 9000 + k * 300, 2, None) for k in range(int(CONFIRM_S / 300) + 1)]
    fc, labelled = run(steps + g2)
    assert labelled and {y for _, y in labelled} == {1}
    assert fc.patients["a"].prior_grade2 and fc.state["a"].g2_ever


def test_care_confirms_a_grade_2_at_once():
    steps = [(T0 + k * 300, 1, None) for k in range(1, 30)]
    on_o2 = Snapshot(temp_c=38.5, hr=110, sbp=100, o2_device="nasal_cannula", o2_flow_lpm=2)
    fc, labelled = run([*steps, (T0 + 9000, 2, on_o2)])
    assert labelled and {y for _, y in labelled} == {1}


def test_advance_waits_while_a_grade_2_is_not_confirmed():
    steps = [(T0 + k * 300, 1, None) for k in range(1, 30)]
    fc, labelled = run([*steps, (T0 + 9000, 2, None)])
    assert fc.advance(T0 + 30 * H) == 0 and labelled == []


# -- when a risk may alert -----------------------------------------------------------------


def gate(st, ps, start=T0, step=600.0):
    return [risk_gate(st, p, start + i * step)[0] for i, p in enumerate(ps)]


def test_an_episode_opens_at_the_level_and_holds_down_to_the_exit():
    st = PatientRisk("lymphoma")
    assert gate(st, [0.2, 0.49, 0.5, 0.35, 0.31, 0.29, 0.45]) == [
        False, False, True, True, True, False, False,
    ]  # fmt: skip


def test_no_second_alert_for_the_same_level_of_risk():
    st = PatientRisk("lymphoma")
    assert gate(st, [0.55, 0.6, 0.2, 0.58, 0.75, 0.79]) == [True, True, False, False, False, False]
    ok, why = risk_gate(st, 0.81, T0 + 7000)
    assert ok and why == "risk episode opened"  # 0.2 above the last peak (0.6)


def test_a_day_below_forgets_the_last_episode():
    st = PatientRisk("lymphoma")
    gate(st, [0.6, 0.1])
    assert risk_gate(st, 0.1, T0 + RESET_S + 600)[0] is False
    assert risk_gate(st, 0.6, T0 + RESET_S + 1200)[0] is True


def test_never_after_a_confirmed_crs_grade_2():
    st = PatientRisk("lymphoma", g2_ever=True)
    ok, why = risk_gate(st, 0.95, T0)
    assert not ok and "supersedes" in why


def test_episode_state_survives_a_restart():
    st = PatientRisk("myeloma")
    gate(st, [0.6, 0.1])
    back = PatientRisk.from_dict(json.loads(json.dumps(st.to_dict())))
    assert back == st
    assert risk_gate(back, 0.65, T0 + 3000)[0] is False


def test_the_alert_rule_follows_the_episode_gate():
    base = {"p": 0.7, "explanation": ["heart rate +30 over baseline"], "cohort": "myeloma"}
    assert _risk({**base, "alert": False}, 0.5, False) is None
    c = _risk({**base, "alert": True, "alert_reason": "risk episode opened"}, 0.5, False)
    assert c is not None and c.tier == 2 and "myeloma" in c.reason
    assert c.detail["episode"] == "risk episode opened"
    assert _risk({**base, "p": 0.4, "alert": True}, 0.5, False) is None  # below the threshold
    assert _risk({**base, "p": 0.4, "alert": True}, 0.5, True) is not None  # held
    assert _risk({"p": 0.7}, 0.5, False) is not None  # a risk without a gate: as before
