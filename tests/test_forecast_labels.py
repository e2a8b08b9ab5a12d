"""forecast.labels: delayed labels, each snapshot learned exactly once, across restarts too.

Timelines: a snapshot may be taken every 30 min; the horizon is 12 h.
"""

from __future__ import annotations

import json
import math

import pytest

from forecast.features import FEATURES
from forecast.labels import Labels, pack, unpack

T0 = 1_767_571_200.0
H = 3600.0
X = {"temp_c": 37.1, "hr": 88.0}


def offer(labels: Labels, patient: str, start: float, end: float, step: float = 300.0):
    """Offer a snapshot every `step` from start to end (as each assessment does)."""
    taken = []
    t = start
    while t <= end:
        if labels.take(patient, t, X, 0.1):
            taken.append(t)
        t += step
    return taken


def test_a_snapshot_every_interval():
    labels = Labels(1800, 12 * H)
    taken = offer(labels, "a", T0, T0 + 3 * H)
    assert taken == [T0 + k * 1800 for k in range(7)]
    assert labels.count() == 7


def test_label_zero_once_the_horizon_has_passed_not_before():
    labels = Labels(1800, 12 * H)
    offer(labels, "a", T0, T0 + 1 * H)  # T0, T0+0.5h, T0+1h
    assert labels.expire("a", T0 + 12 * H - 1) == []
    out = labels.expire("a", T0 + 12 * H)
    assert [(s.t, y) for s, y in out] == [(T0, 0)]
    out = labels.expire("a", T0 + 14 * H)
    assert [(s.t, y) for s, y in out] == [(T0 + 0.5 * H, 0), (T0 + H, 0)]
    assert labels.expire("a", T0 + 20 * H) == [] and labels.count() == 0


def test_label_one_at_once_when_grade_2_arrives_within_the_horizon():
    labels = Labels(1800, 12 * H)
    offer(labels, "a", T0, T0 + 4 * H)
    offer(labels, "b", T0, T0 + 4 * H)
    out = labels.reached("a", T0 + 12.5 * H)  # the first snapshot's horizon has passed
    assert [(s.t - T0) / H for s, _ in out] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert [y for _, y in out] == [0] + [1] * 8
    assert labels.reached("a", T0 + 13 * H) == []  # nothing left to learn twice
    assert labels.count() == 9  # the other patient's are untouched


def test_grade_2_exactly_at_the_horizon_is_a_one():
    labels = Labels(1800, 12 * H)
    labels.take("a", T0, X, 0.2)
    assert [y for _, y in labels.reached("a", T0 + 12 * H)] == [1]


def test_discharge_learns_passed_horizons_and_censors_the_rest():
    labels = Labels(1800, 12 * H)
    offer(labels, "a", T0, T0 + 6 * H)  # 13 snapshots
    out = labels.discharge("a", T0 + 13 * H)  # horizons of T0 .. T0+1h have passed
    assert [((s.t - T0) / H, y) for s, y in out] == [(0.0, 0), (0.5, 0), (1.0, 0)]
    assert labels.censored == 10 and labels.count() == 0


def test_rows_are_json_and_restore_the_same_queue():
    labels = Labels(1800, 12 * H)
    offer(labels, "a", T0, T0 + 2 * H)
    labels.take("b", T0, {"hr": 100.0}, None)
    rows = json.loads(json.dumps(labels.to_rows()))
    assert {r["kind"] for r in rows} == {"pending"}
    assert len({r["key"] for r in rows}) == len(rows) == 6
    back = Labels.from_rows(rows, 1800, 12 * H)
    assert back.to_rows() == labels.to_rows()
    assert not back.is_due("a", T0 + 2 * H + 1799) and back.is_due("a", T0 + 2.5 * H)


def test_pack_keeps_present_features_only():
    x = {"hr": 91.0, "temp_slope": -0.25, "not_a_feature": 1.0}
    a = pack(x)
    assert len(a) == len(FEATURES)
    assert unpack(a) == {"hr": 91.0, "temp_slope": -0.25}
    assert math.isnan(a[FEATURES.index("temp_c")])


def test_positive_interval_and_horizon():
    with pytest.raises(ValueError):
        Labels(0, 12 * H)
