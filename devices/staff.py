"""Simulated ward staff: what they see, what they decide, and how long it takes them.

Pure and clock-free: `Staff.step(t, state)` is called once per simulated minute; it acts on
what staff can know (the monitor's SpO2, the last blood-pressure and temperature readings,
their own neuro checks), never on the hidden course. A decision becomes an action after a
realistic delay (minutes to ~1 hour) and is checked again before it is carried out. Each
action changes `Staff.tx` (physiology.Treatment) and yields a care event in the SPEC.md
shape (without its ts, which the event carries separately).

Rules (CLINICAL.md "Management" and common ward practice):
- oxygen when SpO2 stays < 92 % for 5 min: nasal cannula 2, 4, 6 L/min, then face mask,
  HFNC, CPAP; one step at a time, weaned after 2 h at >= 95 %.
- paracetamol for a measured fever (>= 38.0 C), at most every 6 h.
- a fluid bolus for systolic < 90 (up to 3 in 12 h); norepinephrine when systolic stays
  < 90 after fluids (or < 75 at once), titrated by 0.05 ug/kg/min to 0.25, then vasopressin,
  then epinephrine; weaned after 2 h at >= 105. A dose change is published as
  `{"type": "vasopressor", "action": "start", "dose": new}` (start with the rate now running).
- tocilizumab at CRS grade 2 as staff see it (fever with hypotension or oxygen), or grade 1
  lasting > 3 days; repeated after 8 h if not improving (still hypotensive or febrile, or
  oxygen or vasopressor escalated since the last dose), at most 3 doses.
- dexamethasone every 6 h from grade 3 (vasopressor, face mask or more) or ICANS >= 2;
  one dose for ICANS grade 1.
- neuro checks (ICE score, ACVPU) every 8-12 h; every 4-6 h once CRS is grade >= 2, 2-4 h
  with ICANS, 1-2 h with ICE <= 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.clinical.thresholds import FEVER_C

from .physiology import HOUR, State, Treatment

MIN = 60.0
# (device, flow L/min, FiO2, share of the oxygenation deficit made up)
O2_LADDER = (
    ("room_air", None, None, 0.0),
    ("nasal_cannula", 2, None, 0.30),
    ("nasal_cannula", 4, None, 0.45),
    ("nasal_cannula", 6, None, 0.55),
    ("simple_face_mask", 8, None, 0.62),
    ("hfnc", 40, 0.5, 0.72),
    ("hfnc", 60, 0.8, 0.80),
    ("cpap", None, 0.6, 0.90),
)
FACE_MASK = 4  # ladder index from which oxygen alone is grade 3


@dataclass(frozen=True, slots=True)
class Care:
    ts: float
    body: dict  # {"type": ..., ...} as SPEC.md, without "ts"


class Staff:
    def __init__(self, rng: np.random.Generator, admit_ts: float):
        self.rng = rng
        self.tx = Treatment()
        self.o2 = 0  # index in O2_LADDER
        self.pending: dict[str, float] = {}  # action -> due ts
        self.last_change: dict[str, float] = {}
        self.spo2_low_since: float | None = None
        self.spo2_good_since: float | None = None
        self.nibp: list[tuple[float, float]] = []  # newest last, 3 kept
        self.temp: tuple[float, float] | None = None
        self.first_fever: float | None = None
        self.neuro: tuple[float, int, str] | None = None
        self.monitor: tuple[float, float] | None = None  # (HR, SpO2) on the monitor now
        self.hr_admit: float | None = None
        self.dex_single: float | None = None
        self.next_neuro = admit_ts + self._uniform(0.5, 2) * HOUR

    # -- what staff see --------------------------------------------------------------------
    def see_nibp(self, t: float, sbp: float) -> None:
        self.nibp = [*self.nibp[-2:], (t, sbp)]

    def see_temp(self, t: float, temp_c: float) -> None:
        self.temp = (t, temp_c)
        if temp_c >= FEVER_C and self.first_fever is None:
            self.first_fever = t

    def _see_monitor(self, t: float, hr: float, spo2: float) -> None:
        self.monitor = (hr, spo2)
        if self.hr_admit is None:
            self.hr_admit = hr
        if spo2 < 92:
            self.spo2_low_since = self.spo2_low_since if self.spo2_low_since else t
        else:
            self.spo2_low_since = None
        if spo2 >= 95:
            self.spo2_good_since = self.spo2_good_since if self.spo2_good_since else t
        else:
            self.spo2_good_since = None

    # -- what staff conclude ---------------------------------------------------------------
    def febrile(self, t: float) -> bool:
        return self.temp is not None and self.temp[1] >= FEVER_C and t - self.temp[0] <= 3 * HOUR

    def hypotensive(self, n: int = 1) -> bool:
        return len(self.nibp) >= n and all(s < 90 for _, s in self.nibp[-n:])

    def _recent(self, doses: list[float], t: float, within_s: float) -> int:
        return sum(1 for d in doses if t - within_s <= d <= t)

    def grade(self, t: float) -> int:
        """CRS grade as staff would call it now (0 until a fever was measured)."""
        if self.first_fever is None:
            return 0
        if self.tx.pressors or self.o2 >= FACE_MASK:
            return 3
        if self.hypotensive() or self.o2 > 0 or self._recent(self.tx.fluids, t, 12 * HOUR):
            return 2
        return 1

    def icans(self) -> int:
        if self.neuro is None:
            return 0
        _, ice, acvpu = self.neuro
        by_ice = 0 if ice >= 10 else 1 if ice >= 7 else 2 if ice >= 3 else 3
        return max(by_ice, {"V": 2, "P": 3, "U": 4}.get(acvpu, 0))

    def alarming_monitor(self) -> bool:
        """New tachycardia (>= 110, or 20 above the admission rate) or SpO2 < 94 %."""
        if self.monitor is None:
            return False
        hr, spo2 = self.monitor
        return hr >= 110 or hr >= (self.hr_admit or hr) + 20 or spo2 < 94

    def unstable(self, t: float) -> bool:
        return bool(
            self.tx.pressors
            or self.o2
            or self.grade(t) >= 2
            or (self.nibp and self.nibp[-1][1] < 100)
            or self.icans() >= 2
            or self.alarming_monitor()
        )

    def nibp_interval(self, t: float) -> float:
        """Automatic NIBP cycle: 15 min when unstable (vasopressor, oxygen, systolic < 100,
        grade 2, ICANS 2, new tachycardia or SpO2 < 94), 30 min by day, 60 min at night."""
        if self.unstable(t):
            return 15 * MIN
        hour = (t % 86400) / HOUR
        return 60 * MIN if (hour >= 22 or hour < 6) and not self.febrile(t) else 30 * MIN

    def round_interval(self, t: float) -> float:
        """Nurse observations (temperature, ACVPU): hourly when febrile or unstable (as for
        NIBP), else every 4 h."""
        return HOUR if self.febrile(t) or self.unstable(t) or self.icans() else 4 * HOUR

    # -- the minute step -------------------------------------------------------------------
    def step(self, t: float, s: State) -> list[Care]:
        """Carry out what is due at or before t, then plan what the state calls for."""
        self._see_monitor(t, s.hr, s.spo2)
        done: list[Care] = []
        for action, due in sorted(self.pending.items(), key=lambda kv: kv[1]):
            if due <= t:
                del self.pending[action]
                if self._wanted(action, due):
                    done += self._do(action, due, s)
        for action, (low, high) in PLANS.items():
            if action not in self.pending and self._wanted(action, t):
                self.pending[action] = float(round(t + self._uniform(low, high) * MIN))
        return done

    def _uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def _since_change(self, kind: str, t: float) -> float:
        return t - self.last_change.get(kind, -1e12)

    def _wanted(self, action: str, t: float) -> bool:
        tx = self.tx
        if action == "neuro":
            return t >= self.next_neuro
        if action == "o2_up":
            return (
                self.o2 < len(O2_LADDER) - 1
                and self.spo2_low_since is not None
                and t - self.spo2_low_since >= 5 * MIN
                and self._since_change("o2", t) >= 15 * MIN
            )
        if action == "o2_down":
            return (
                self.o2 > 0
                and self.spo2_good_since is not None
                and t - self.spo2_good_since >= 2 * HOUR
                and self._since_change("o2", t) >= 2 * HOUR
            )
        if action == "paracetamol":
            return self.febrile(t) and not self._recent(tx.paracetamol, t, 6 * HOUR)
        if action == "fluids":
            return (
                self.hypotensive()
                and not self._recent(tx.fluids, t, HOUR)
                and self._recent(tx.fluids, t, 12 * HOUR) < 3
            )
        if action == "pressor_up":
            if not tx.pressors:
                after_fluids = self._recent(tx.fluids, t, 6 * HOUR) > 0 and not self._recent(
                    tx.fluids, t, 30 * MIN
                )
                severe = bool(self.nibp) and self.nibp[-1][1] < 75
                return (self.hypotensive(2) and after_fluids) or severe
            return (
                self.hypotensive()
                and self.nibp[-1][0] > self.last_change["pressor"]
                and self._since_change("pressor", t) >= 20 * MIN
                and tx.pressors.get("epinephrine", 0) < 0.2
            )
        if action == "pressor_down":
            return (
                bool(tx.pressors)
                and len(self.nibp) >= 2
                and all(s >= 105 for _, s in self.nibp[-2:])
                and self._since_change("pressor", t) >= 2 * HOUR
            )
        if action == "toci":
            if len(tx.toci) >= 3 or self.first_fever is None:
                return False
            if tx.toci:  # again after 8 h when not improving
                worse = self.last_change.get("o2_up", 0) > tx.toci[-1] or (
                    tx.pressors and self.last_change["pressor_up"] > tx.toci[-1]
                )
                still = self.hypotensive() or worse or self.febrile(t)
                return bool(still) and t - tx.toci[-1] >= 8 * HOUR
            long_fever = t - self.first_fever >= 72 * HOUR and self.febrile(t)
            return self.grade(t) >= 2 or long_fever
        if action == "dex":
            if self.grade(t) >= 3 or self.icans() >= 2:
                return not self._recent(tx.dex, t, 6 * HOUR)
            return self.icans() == 1 and not self._recent(tx.dex, t, 24 * HOUR)
        raise ValueError(action)

    def _do(self, action: str, ts: float, s: State) -> list[Care]:
        tx = self.tx
        if action == "neuro":
            self.neuro = (ts, s.ice, s.acvpu)
            ice = self.icans()
            # a nursing rhythm: every 8-12 h; 4-6 h once CRS is grade 2 or more as staff
            # see it; 2-4 h with ICANS; 1-2 h from ICANS grade 2
            hours = (
                (1, 2)
                if ice >= 2
                else (2, 4)
                if ice
                else (4, 6)
                if self.grade(ts) >= 2
                else (8, 12)
            )
            self.next_neuro = ts + self._uniform(*hours) * HOUR
            return [
                Care(ts, {"type": "neuro", "ice_score": s.ice, "acvpu": s.acvpu, "seizure": False})
            ]
        if action in ("o2_up", "o2_down"):
            self.o2 += 1 if action == "o2_up" else -1
            self.last_change["o2"] = self.last_change[action] = ts
            self.spo2_good_since = self.spo2_low_since = None
            device, flow, fio2, support = O2_LADDER[self.o2]
            tx.o2_device, tx.o2_support = device, support
            body = {"type": "oxygen", "device": device}
            body.update({k: v for k, v in (("flow_lpm", flow), ("fio2", fio2)) if v})
            return [Care(ts, body)]
        if action in ("paracetamol", "toci", "dex", "fluids"):
            getattr(
                tx,
                {"toci": "toci", "dex": "dex", "paracetamol": "paracetamol", "fluids": "fluids"}[
                    action
                ],
            ).append(ts)
            drug = {
                "toci": "tocilizumab",
                "dex": "dexamethasone",
                "paracetamol": "paracetamol",
                "fluids": "crystalloid bolus",
            }[action]
            return [Care(ts, {"type": "medication", "drug": drug})]
        self.last_change["pressor"] = self.last_change[action] = ts
        return [
            Care(ts, {"type": "vasopressor", "drug": drug, "action": act, **dose})
            for drug, act, dose in self._titrate(action == "pressor_up")
        ]

    def _titrate(self, up: bool) -> list[tuple[str, str, dict]]:
        p = self.tx.pressors
        ne, epi = p.get("norepinephrine", 0.0), p.get("epinephrine", 0.0)
        if up:
            if ne < 0.25:
                drug, dose = "norepinephrine", round(ne + 0.05, 2)
            elif "vasopressin" not in p:
                drug, dose = "vasopressin", 0.03
            else:
                drug, dose = "epinephrine", round(epi + 0.05, 2)
        elif epi:
            drug, dose = "epinephrine", round(epi - 0.05, 2)
        elif "vasopressin" in p:
            drug, dose = "vasopressin", 0.0
        else:
            drug, dose = "norepinephrine", round(ne - 0.05, 2)
        if dose <= 0:
            p.pop(drug, None)
            return [(drug, "stop", {})]
        p[drug] = dose
        return [(drug, "start", {"dose": dose})]


# action -> delay range in minutes between the decision and the act
PLANS: dict[str, tuple[float, float]] = {
    "neuro": (0, 20),
    "o2_up": (5, 25),
    "o2_down": (10, 60),
    "paracetamol": (10, 45),
    "fluids": (5, 20),
    "pressor_up": (10, 40),
    "pressor_down": (10, 30),
    "toci": (30, 90),
    "dex": (20, 60),
}
