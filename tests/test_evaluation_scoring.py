"""commands/evaluation/scoring.py: when an alert counts as naming an onset (detection)."""

from __future__ import annotations

from commands.evaluation.scoring import naming_intervals

T = 1_767_914_940.0


def decision(t: float, event: str, tier: int = 2, level: int = 2, aid: str = "a1") -> dict:
    return {"ts": T + t, "id": aid, "kind": "crs", "tier": tier, "level": level, "event": event}


def test_an_acknowledged_alert_whose_repeat_is_skipped_is_still_shown():
    """A CRS grade 2 alert raised, acknowledged, its repeat then skipped ("suppressed"):
    it is on the dashboard until resolved or downgraded, and names the onset meanwhile
    (seen in a replay with --ack-after: the skipped repeat had closed it)."""
    ds = [
        decision(0, "raised"),
        decision(300, "acknowledged"),
        decision(600, "suppressed"),
        decision(900, "downgraded", tier=1, level=1),
    ]
    assert naming_intervals(ds, 2) == [(T, T + 900)]


def test_a_new_alert_muted_from_the_start_is_not_shown_and_resolved_ends_one():
    ds = [
        decision(0, "suppressed", aid="muted"),
        decision(60, "raised", aid="a2"),
        decision(120, "resolved", aid="a2"),
    ]
    assert naming_intervals(ds, 2) == [(T + 60, T + 120)]
