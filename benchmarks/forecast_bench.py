"""What the forecast costs per patient: memory (feature state, pending snapshots) and time
(observe, learn, predict, explain), with the shipped model.

    .venv/bin/python benchmarks/forecast_bench.py [--patients 400] [--hours 13]

Patients are synthetic (seeded random vitals, a temperature each hour, observed every
5 min) and fed straight to the Forecaster, so the figures are the forecast's own, without
the BedState assessment the daemon pays anyway. After 13 h each patient holds its full
queue of pending snapshots (12 h / 30 min + 1). Memory is measured with tracemalloc.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.view import VitalView  # noqa: E402
from forecast.features import PatientFeatures  # noqa: E402
from forecast.model import ForecastModel  # noqa: E402
from forecast.service import Forecaster  # noqa: E402
from monitor.clinical.snapshot import Snapshot  # noqa: E402
from monitor.ingest.messages import Admission  # noqa: E402

T0 = 1_767_571_200.0
STEP = 300.0


def stream(patients: int, hours: float, seed: int = 1):
    """(t, key, snapshot, assessment) in time order, every patient every STEP."""
    rng = random.Random(seed)
    adm = [
        Admission(
            f"P{i}",
            T0,
            age=rng.randint(20, 80),
            product="tisagenlecleucel",
            indication="diffuse large B-cell lymphoma",
            infusion_ts=T0 - 8 * 3600,
        )
        for i in range(patients)
    ]
    crs = SimpleNamespace(at_least=1)
    out = []
    for k in range(1, int(hours * 3600 / STEP) + 1):
        t = T0 + k * STEP
        temp_ts = T0 + (k * STEP // 3600) * 3600
        for i, a in enumerate(adm):
            s = Snapshot(
                temp_c=round(rng.gauss(37.4, 0.6), 1),
                hr=rng.gauss(90, 12),
                rr=rng.gauss(17, 3),
                spo2=rng.gauss(96, 1.5),
                sbp=rng.gauss(115, 12),
                map=rng.gauss(85, 8),
                o2_device="room_air",
                vasopressors=(),
            )
            news2 = SimpleNamespace(total=rng.randint(0, 6), complete=True)
            out.append(
                (
                    t,
                    f"bed{i}",
                    s,
                    SimpleNamespace(
                        snapshot=s,
                        admission=a,
                        news2=news2,
                        crs=crs,
                        vitals={"temp_c": VitalView(None, temp_ts, "live")},
                    ),
                )
            )
    return out


def memory(model: ForecastModel, events, patients: int) -> dict[str, float]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    feats = {}
    for t, key, s, a in events:
        f = feats.get(key) or feats.setdefault(key, PatientFeatures(a.admission))
        f.update(s, t, news2=a.news2.total, temp_ts=a.vitals["temp_c"].ts)
    gc.collect()
    features_b = (tracemalloc.get_traced_memory()[0] - base) / patients
    del feats
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    fc = Forecaster(model, learn=False)
    for t, key, s, a in events:
        fc.observe(key, s, a, t)
    gc.collect()
    total_b = (tracemalloc.get_traced_memory()[0] - base) / patients
    tracemalloc.stop()
    pending = fc.labels.count() / patients
    rows_b = len(json.dumps(fc.to_rows())) / patients
    return {
        "features_bytes": features_b,
        "forecaster_bytes": total_b,
        "pending_per_patient": pending,
        "rows_json_bytes": rows_b,
    }


def timing(model: ForecastModel, events) -> dict[str, float]:
    fc = Forecaster(model, learn=True)
    t0 = time.perf_counter()
    for t, key, s, a in events:
        fc.observe(key, s, a, t)
    observe_us = (time.perf_counter() - t0) / len(events) * 1e6
    # labels come due: learn them all (horizon passed for the oldest ones)
    last_t = events[-1][0]
    t0 = time.perf_counter()
    learned = fc.advance(last_t + 12 * 3600)
    advance_us = (time.perf_counter() - t0) / max(1, learned) * 1e6
    f = PatientFeatures(events[0][3].admission)
    xs = [f.update(s, t) for t, _, s, _ in events[:5000]]
    m = ForecastModel.from_bytes(model.to_bytes())
    out = {
        "observe_us": observe_us,
        "learned_on_advance": learned,
        "advance_us_per_label": advance_us,
    }
    for name, call in (
        ("learn_one_us", lambda x: m.learn_one(x, 0)),
        ("predict_proba_one_us", m.predict_proba_one),
        ("explain_us", m.explain),
    ):
        t0 = time.perf_counter()
        for x in xs:
            call(x)
        out[name] = (time.perf_counter() - t0) / len(xs) * 1e6
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--patients", type=int, default=400)
    p.add_argument("--hours", type=float, default=13.0)
    p.add_argument("--model", default=str(ROOT / "forecast" / "model.pkl"))
    args = p.parse_args()
    model = ForecastModel.load(args.model)
    events = stream(args.patients, args.hours)
    print(
        f"{args.patients} patients x {args.hours:g} h, observed every {STEP:g} s: "
        f"{len(events)} observations; model {model.version}"
    )
    mem = memory(model, events, args.patients)
    print(
        f"memory per patient: feature state {mem['features_bytes']:.0f} B; everything the "
        f"Forecaster holds {mem['forecaster_bytes']:.0f} B with "
        f"{mem['pending_per_patient']:.0f} pending snapshots; "
        f"rows {mem['rows_json_bytes']:.0f} B of JSON"
    )
    tm = timing(model, events)
    print(
        f"time: observe {tm['observe_us']:.1f} us (features, predict, explain, snapshot); "
        f"advance {tm['advance_us_per_label']:.1f} us per label learned "
        f"({tm['learned_on_advance']} learned); learn_one {tm['learn_one_us']:.1f} us, "
        f"predict_proba_one {tm['predict_proba_one_us']:.1f} us, "
        f"explain {tm['explain_us']:.1f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
