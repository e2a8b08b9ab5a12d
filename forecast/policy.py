"""What the forecast may teach and when its risk may alert: per patient, pure rules.

Which grade 2 teaches the model. The label "CRS grade >= 2 within 12 h" comes from the
daemon's own grade (the truth is not known on a ward). A grade 2 that was an artefact (a
two-reading SpO2 dropout, one low cuff reading in a febrile patient) must not teach the
model that the hours before it were dangerous, nor set "CRS grade 2 earlier in this
admission". So a run of grade >= 2 is learned (label 1 as of its start) only once it is
confirmed: it has lasted CONFIRM_S, or it comes back within RECUR_S of an earlier
unconfirmed run (a true grade 2 flickers around its threshold, systolic 88-92; a probe
slip does not come back; label as of the first run), or care confirms it (oxygen above room
air or a vasopressor running: what a team starts for a CRS grade 2, never for a probe
artefact). A run that is not confirmed is forgotten once RECUR_S has passed; until then
only the snapshots whose horizon ended before it are labelled 0.

When the risk may raise a tier-2 "risk" alert (a risk *episode*; alerts/rules.py `_risk`):
- it starts when the calibrated p reaches `alert_p` and stays open while p >= alert_p -
  EXIT_MARGIN (the same exit margin as the alert: no flapping);
- once a patient has had a risk episode, another one opens only when p rises RISE above the
  highest p of the last one (a warning already given is not repeated for the same level of
  risk), or after p has stayed below the exit level for RESET_S (a new day, a new story);
- never once a confirmed CRS grade 2 has been reached in this admission: the patient is
  known to the team and the CRS alert (tier 2, and again at a re-escalation) supersedes
  the forecast. The risk is still computed and shown on the tile.
Each answer comes with its reason (the alert decision carries it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from alerts.config import AlertSettings
from alerts.rules import RISK_EXIT_MARGIN

# the calibrated p a risk episode starts at, and how far below it an episode stays open:
# the risk alert's own default threshold and exit margin (one definition, in alerts/)
ALERT_P = AlertSettings.risk_threshold
EXIT_MARGIN = RISK_EXIT_MARGIN
RISE = 0.2  # how much higher than the last episode's peak a new episode must go
RESET_S = 24 * 3600.0  # below the exit level this long: the last episode is forgotten
CONFIRM_S = 1800.0  # a run of CRS grade >= 2 this long is learned (without care confirming)
RECUR_S = 2 * 3600.0  # ... or one that comes back within this of an earlier run


@dataclass(slots=True)
class PatientRisk:
    """The forecast's memory of one admission besides its features (saved as a row)."""

    group: str  # calibration cohort (calibration.group_of)
    g2_since: float | None = None  # the current run of CRS grade >= 2 started (None: below)
    g2_first: float | None = None  # the first unconfirmed run that may still recur began
    g2_confirmed: bool = False  # that run has been confirmed (and learned)
    g2_ever: bool = False  # a confirmed grade 2 in this admission
    alert: bool = False  # a risk episode is open
    peak: float | None = None  # the highest p of the last (or current) episode
    low_since: float | None = None  # p below the exit level since

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PatientRisk:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def care_confirms(s: Any) -> bool:
    """Care that confirms a CRS grade 2 (snapshot `s`): oxygen above room air, or a
    vasopressor running."""
    o2 = getattr(s, "o2_device", None)
    return (o2 is not None and o2 != "room_air") or bool(getattr(s, "vasopressors", None))


def confirmed(st: PatientRisk, s: Any, t: float) -> bool:
    """Is the run of grade >= 2 that `st` is in at t (snapshot `s`) a grade 2 to learn?"""
    assert st.g2_since is not None
    recurs = st.g2_first is not None and st.g2_first < st.g2_since
    return t - st.g2_since >= CONFIRM_S or recurs or care_confirms(s)


def risk_gate(st: PatientRisk, p: float, t: float, alert_p: float = ALERT_P) -> tuple[bool, str]:
    """Update the episode state of `st` with the calibrated p at t; (may the risk alert now,
    why)."""
    exit_p = alert_p - EXIT_MARGIN
    if p < exit_p:
        st.low_since = t if st.low_since is None else st.low_since
    else:
        st.low_since = None
    if st.g2_ever:
        st.alert = False
        return False, "CRS grade 2 already reached in this admission: the CRS alert supersedes"
    if st.alert:
        if p >= exit_p:
            st.peak = p if st.peak is None else max(st.peak, p)
            return True, "risk episode open"
        st.alert = False
        return False, "risk episode closed"
    if st.peak is not None and st.low_since is not None and t - st.low_since >= RESET_S:
        st.peak = None  # a day below the exit level: the last episode is forgotten
    if p < alert_p:
        return False, "below the alert level"
    if st.peak is not None and p < st.peak + RISE:
        return False, f"no material rise over the last risk episode's peak {st.peak:.2f}"
    st.alert, st.peak = True, p
    return True, "risk episode opened"
