"""forecast.training.evaluate and forecast.training.simdata: the figures' arithmetic, and a tiny
simulated ward end to end (2 beds, 1 day: the real runs are the CLIs, see forecast/MODEL.md)."""

from __future__ import annotations

import itertools
import random

import pytest

from forecast.training import evaluate
from forecast.training.evaluate import auroc_exact, lead_time, quantile, standing_lead, warnings
from forecast.training.simdata import run_bed, ward_options

H = 3600.0


def brute_auroc(ps, ys):
    both = list(zip(ps, ys, strict=True))
    pairs = [(p, q) for (p, y), (q, z) in itertools.product(both, both) if y == 1 and z == 0]
    return sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs) / len(pairs)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_exact_matches_pair_counting(seed):
    rng = random.Random(seed)
    ps = [round(rng.random(), 1) for _ in range(60)]  # many ties
    ys = [int(rng.random() < p) for p in ps]
    assert auroc_exact(ps, ys) == pytest.approx(brute_auroc(ps, ys))
    assert auroc_exact([0.2, 0.4], [1, 1]) is None


def test_quantile():
    assert quantile([], 0.5) is None
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0


def test_lead_time_is_the_first_warning_within_12_h():
    onset = 100 * H
    risks = [
        (onset - 14 * H, 0.9),
        (onset - 9 * H, 0.2),
        (onset - 8 * H, 0.6),
        (onset - 7 * H, 0.1),
        (onset - 1 * H, 0.7),
        (onset + H, 0.9),
    ]
    assert lead_time(risks, onset, 0.5) == 8 * H
    assert lead_time(risks, onset, 0.95) is None


def test_standing_lead_is_how_long_the_warning_on_at_the_onset_had_been_on():
    onset = 100 * H
    risks = [
        (onset - k * 0.5 * H, p)
        for k, p in zip(
            range(10, 0, -1), [0.6, 0.6, 0.1, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9], strict=True
        )
    ]
    assert standing_lead(risks, onset, 0.5) == 3.5 * H
    assert standing_lead(risks[:-3], onset, 0.5) is None  # last forecast 2 h before: unknown
    assert standing_lead([(onset - H, 0.1), (onset - 0.5 * H, 0.2)], onset, 0.5) is None


def test_warnings_merge_a_risk_hovering_at_the_threshold():
    step = 300.0
    ps = [0.4, 0.6, 0.45, 0.55, 0.4] + [0.1] * 20 + [0.7]
    risks = [(k * step, p) for k, p in enumerate(ps)]
    assert warnings(risks, 0.5) == [step, 25 * step]


def test_a_tiny_simulated_ward_end_to_end(capsys):
    opts = ward_options(seed=7, beds=2, days=1.0, fast_interval_s=300)
    a, b = run_bed(opts, 1), run_bed(opts, 1)
    assert a.labelled == b.labelled and a.risks == b.risks  # seeded: the same twice
    assert a.risks and all(0 < p < 1 for _, p in a.risks)
    assert all(t <= label_t for t, _, _, _, label_t in a.labelled)
    assert (
        evaluate.main(
            [
                "--seed",
                "7",
                "--beds",
                "2",
                "--days",
                "1",
                "--fast-interval",
                "300",
                "--jobs",
                "1",
                "--online",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 beds, 2.0 patient-days" in out and "Brier" in out and "online" in out
