"""The forecast inside the daemon: risk in the state, persisted with its pending examples,
restored after a restart, its quality on /metrics."""

from __future__ import annotations

import aiohttp

from monitor.store.writes import replace_forecast_state
from tests.test_timeline import T0, FakeClock, Ward

CALM = {"hr": 72, "rr": 14, "spo2": 97, "sbp": 124, "map": 88, "acvpu": "A"}


def course(ward: Ward, hours: float, sick: bool) -> None:
    """A reading every 10 min; the sick patient's fever and heart rate climb."""
    for i in range(int(hours * 6)):
        t = T0 + 600 * (i + 1)
        rise = i / (hours * 6) if sick else 0.0
        ward.vitals(t, temp_c=36.8 + 1.1 * rise, **{**CALM, "hr": 72 + 30 * rise})


def test_risk_appears_in_the_state_with_its_reasons(tmp_path):
    sick = Ward(tmp_path / "a", FakeClock(T0))
    calm = Ward(tmp_path / "b", FakeClock(T0))
    course(sick, 6, sick=True)
    course(calm, 6, sick=False)
    r_sick, r_calm = sick.state()["risk"], calm.state()["risk"]
    assert 0.0 <= r_calm["p"] < r_sick["p"] <= 1.0
    assert r_sick["horizon_h"] == 12 and r_sick["explanation"]
    assert any("temperature" in e or "heart rate" in e for e in r_sick["explanation"])


def test_a_restart_keeps_the_pending_examples_and_the_model(tmp_path):
    ward = Ward(tmp_path, FakeClock(T0))
    course(ward, 3, sick=False)
    before = ward.pipe.ward.forecaster
    pending = before.labels.count()
    assert pending >= 1
    ward.pipe.store.transact_sync(replace_forecast_state, before.to_rows())
    ward.pipe.store.close()
    ward.open()  # a restart
    after = ward.pipe.ward.forecaster
    assert after is not before
    assert after.labels.count() == pending
    assert set(after.patients) == set(before.patients)
    assert after.model.n_learned == before.model.n_learned


async def test_forecast_quality_is_on_metrics(make_daemon):
    d = await make_daemon()
    d._forecast_gauges()
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}/metrics") as r:
            text = await r.text()
    for measure in ("auroc", "brier", "pending_snapshots", "calibration_bin0_observed"):
        assert f'crswatch_forecast{{measure="{measure}"}}' in text
