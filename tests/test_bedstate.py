"""BedState as timelines: readings and care events at explicit times, questions as of a time."""

from __future__ import annotations

import random
import sys

import pytest

from alerts.view import VitalView
from monitor.clock import iso
from monitor.ingest.messages import VITALS, Admission, CareEvent, Observation
from monitor.state.bedstate import MONITOR_KEEP, BedState
from monitor.state.persistence import MONITOR
from monitor.state.view import bed_view, day_label, to_wire

T0 = 1_790_000_000.0  # admission time; every timeline below is in seconds after it
WINDOWS = {  # as config.Config.windows() with the defaults
    "hr": (60.0, 300.0),
    "rr": (60.0, 300.0),
    "spo2": (60.0, 300.0),
    "o2_flow_lpm": (60.0, 300.0),
    "fio2": (60.0, 300.0),
    "sbp": (3900.0, 7800.0),
    "dbp": (3900.0, 7800.0),
    "map": (3900.0, 7800.0),
    "temp_c": (5 * 3600.0, 9 * 3600.0),
    "acvpu": (5 * 3600.0, 13 * 3600.0),
}


def bed(keep: int = 16, infusion_ts: float | None = None) -> BedState:
    return BedState(Admission("P1", T0, infusion_ts=infusion_ts), WINDOWS, keep=keep)


def obs(b: BedState, t: float, **values) -> None:
    b.add_observation(Observation(T0 + t, values))


def care(b: BedState, t: float, type_: str, **data) -> None:
    b.add_care(CareEvent(T0 + t, type_, data))


def snap(b: BedState, t: float):
    return b.snapshot_at(T0 + t)


# -- hypotension: confirmed by the next reading or a persistent tachycardia ----------------
# -- hypoxaemia: every SpO2 reading of the last 180 s low (and at least two) ----------------


def test_one_low_bp_reading_is_not_hypotension():
    b = bed()
    obs(b, 100, sbp=85, map=60, hr=100)
    assert snap(b, 100).sbp == 85
    assert snap(b, 100).hypotension_sustained is False


def test_two_consecutive_low_bp_readings_are_hypotension():
    b = bed()
    obs(b, 100, sbp=85, map=60)
    obs(b, 160, sbp=84, map=61)
    assert snap(b, 159).hypotension_sustained is False
    assert snap(b, 160).hypotension_sustained is True


def test_one_low_cuff_reading_standing_alone_is_not_hypotension_until_repeated():
    """A single low cuff reading stands until the next cuff, 15-60 min later: standing is
    not confirming (docs/clinical-decisions.md)."""
    b = bed()
    obs(b, 0, sbp=120, map=85)
    obs(b, 100, sbp=85, map=70, hr=80)
    for t in range(160, 1900, 60):
        obs(b, t, hr=80, spo2=97)
    s = snap(b, 1840)
    assert s.hypotension_sustained is False
    assert s.sbp == 120  # NEWS2 reads the less extreme of the newest two readings
    assert any("repeat the cuff" in n for n in b.assess(T0 + 1840).notes)
    obs(b, 1900, sbp=86, map=63)  # the nurse's repeat confirms it
    s = snap(b, 1900)
    assert s.hypotension_sustained is True and s.sbp == 86


def test_one_low_cuff_reading_with_a_tachycardia_still_needs_the_repeat():
    """A febrile, tachycardic patient's low cuff reading is often an artefact the nurse's
    repeat disproves (tuning seeds): the tachycardia confirms nothing."""
    b = bed()
    obs(b, 0, sbp=120, map=85)
    for t in range(0, 300, 60):
        obs(b, t, hr=118)
    obs(b, 300, sbp=84, map=62, hr=121)
    assert snap(b, 300).hypotension_sustained is False
    obs(b, 480, sbp=112, map=80, hr=119)  # the repeat: an artefact
    assert snap(b, 480).hypotension_sustained is False


def test_the_wall_clock_alone_does_not_sustain_a_low_reading():
    b = bed()
    obs(b, 100, sbp=85, hr=100)
    assert snap(b, 1000).sbp == 85  # still within the BP lost window
    assert snap(b, 1000).hypotension_sustained is False  # no device has spoken since


def test_a_normal_reading_in_between_resets_hypotension():
    b = bed()
    obs(b, 100, sbp=85)
    obs(b, 400, sbp=110, map=80)
    obs(b, 500, sbp=86)
    assert snap(b, 400).hypotension_sustained is False
    assert snap(b, 500).hypotension_sustained is False  # low, normal, low: not consecutive
    obs(b, 600, sbp=88)
    assert snap(b, 600).hypotension_sustained is True


def test_low_mean_pressure_alone_is_low_and_parts_of_one_time_point_combine():
    b = bed()
    obs(b, 100, sbp=100, map=60)
    obs(b, 200, sbp=100)
    obs(b, 200, map=62)  # the same time point, delivered in two messages
    assert snap(b, 200).hypotension_sustained is True
    obs(b, 300, sbp=120, map=85)
    assert snap(b, 300).hypotension_sustained is False


def test_no_bp_reading_is_unknown_not_normal():
    b = bed()
    obs(b, 100, hr=80, spo2=97)
    assert snap(b, 100).hypotension_sustained is None
    obs(b, 200, sbp=85)
    assert snap(b, 200 + 7801).hypotension_sustained is None  # the BP reading is lost


def test_hypoxaemia_is_a_low_spo2_that_persisted_180_s():
    b = bed()
    obs(b, 0, spo2=96)
    for t in range(60, 240, 60):  # a 3-sample dropout at a one-minute cadence
        obs(b, t, spo2=84)
    assert snap(b, 180).hypoxaemia_sustained is False  # 96 at t=0 is within the 180 s
    obs(b, 240, spo2=96)
    assert snap(b, 240).hypoxaemia_sustained is False
    for t in range(300, 540, 60):  # four minutes low: every reading of 180 s is low
        obs(b, t, spo2=86)
    assert snap(b, 420).hypoxaemia_sustained is False  # 96 at 240 still within 180 s
    assert snap(b, 480).hypoxaemia_sustained is True
    assert snap(b, 480).spo2 == 86
    assert bed().snapshot_at(T0).hypoxaemia_sustained is None


def test_at_a_five_minute_cadence_two_low_readings_in_a_row_are_hypoxaemia():
    b = bed()
    obs(b, 0, spo2=96, hr=80)
    obs(b, 300, spo2=85, hr=82)
    assert snap(b, 300).hypoxaemia_sustained is False
    obs(b, 600, spo2=86, hr=84)
    assert snap(b, 600).hypoxaemia_sustained is True


def test_a_gradual_desaturation_is_hypoxaemia_at_its_second_low_reading():
    """docs/clinical-decisions.md (plausibility): a capillary leak desaturates a point at a
    time: two low readings in a row after a gradual fall count at once; a probe slipping
    (a sudden fall of 8-20 points) for two or three readings still waits 180 s."""
    b = bed()
    for t, v in zip(range(0, 300, 60), (94, 93, 92, 91, 90), strict=True):
        obs(b, t, spo2=v, hr=118, rr=24, temp_c=38.9, sbp=118, dbp=70)
    obs(b, 300, spo2=89)
    assert snap(b, 300).hypoxaemia_sustained is False  # one low reading
    obs(b, 360, spo2=89)
    s = snap(b, 360)
    assert (s.spo2, s.hypoxaemia_sustained) == (89, True)
    assert b.assess(T0 + 360).crs.grade == 2  # fever and hypoxaemia on room air: paged now
    obs(b, 420, spo2=90)
    assert snap(b, 420).hypoxaemia_sustained is False  # back at 90: not low now
    # a probe slip of three one-minute readings on a febrile patient at 95 %
    p = bed()
    for t in range(0, 300, 60):
        obs(p, t, spo2=95, hr=118, temp_c=38.9, sbp=118, dbp=70)
    for t, v in zip(range(300, 480, 60), (84, 86, 81), strict=True):
        obs(p, t, spo2=v)
        assert snap(p, t).hypoxaemia_sustained is False
        assert p.assess(T0 + t).crs.grade == 1
    # two low readings that jump about (a probe moving) are not gradual either
    q = bed()
    for t, v in zip(range(0, 300, 60), (91, 90, 91, 90, 85), strict=True):
        obs(q, t, spo2=v)
    obs(q, 300, spo2=89)
    assert snap(q, 300).hypoxaemia_sustained is False


def test_a_gradual_fall_on_spo2_scale_2_still_waits_180_s():
    """On scale 2 the patient lives at the threshold: noise alone gives two low readings."""
    b = BedState(Admission("P1", T0, spo2_scale=2), WINDOWS)
    for t, v in zip(range(0, 360, 60), (89, 89, 88, 88, 87, 87), strict=True):
        obs(b, t, spo2=v)
    assert snap(b, 300).hypoxaemia_sustained is False
    obs(b, 360, spo2=87)
    obs(b, 420, spo2=87)
    assert snap(b, 480).hypoxaemia_sustained is True


def test_hypoxaemia_on_spo2_scale_2_is_below_the_patients_own_target():
    """CLINICAL.md (revised): scale 2 (target 88-92 %): hypoxaemia is < 88 %."""
    b = BedState(Admission("P1", T0, spo2_scale=2), WINDOWS)
    for t in range(0, 600, 60):
        obs(b, t, spo2=89)
    assert snap(b, 540).hypoxaemia_sustained is False
    for t in range(600, 900, 60):
        obs(b, t, spo2=86)
    assert snap(b, 840).hypoxaemia_sustained is True


def test_a_lead_off_heart_rate_0_while_spo2_reads_a_pulse_is_left_out():
    b = bed()
    for t in range(0, 600, 60):
        obs(b, t, hr=0 if t >= 180 else 80, spo2=97)
    assert snap(b, 240).hr == 80  # a lead off for a minute: the plausible readings stand
    s = snap(b, 540)
    assert s.hr is None  # off for six minutes: unknown (never asystole, never normal)
    assert any("check the ECG leads" in n for n in b.assess(T0 + 540).notes)


# -- out of order ----------------------------------------------------------------------------

TIMELINE = [
    (0, {"hr": 80, "spo2": 97, "sbp": 120, "map": 85}),
    (60, {"hr": 84, "spo2": 96, "temp_c": 37.2}),
    (120, {"hr": 90, "spo2": 92, "sbp": 88, "map": 64}),
    (180, {"hr": 105, "spo2": 88, "temp_c": 38.6}),
    (240, {"hr": 112, "spo2": 87, "sbp": 85, "map": 60, "acvpu": "A"}),
    (300, {"hr": 118, "rr": 24}),
]


@pytest.mark.parametrize("order", ["newest_first", "shuffled"])
def test_readings_out_of_order_give_the_same_snapshots(order):
    in_order, other = bed(), bed()
    for t, values in TIMELINE:
        obs(in_order, t, **values)
    delivery = (
        TIMELINE[::-1]
        if order == "newest_first"
        else random.Random(7).sample(TIMELINE, len(TIMELINE))
    )
    for t, values in delivery:
        obs(other, t, **values)
    for t in (0, 30, 60, 120, 179, 180, 240, 300, 400):
        assert snap(other, t) == snap(in_order, t), t
    assert other.latest_ts == in_order.latest_ts == T0 + 300


def test_a_late_old_reading_does_not_replace_the_present_value():
    b = bed()
    obs(b, 200, temp_c=38.2)
    obs(b, 100, temp_c=37.0)  # a gateway flushing its buffer
    assert snap(b, 200).temp_c == 38.2
    assert snap(b, 150).temp_c == 37.0  # the past sees it
    assert snap(b, 99).temp_c is None
    assert b.latest_ts == T0 + 200


def test_no_future_and_an_exact_duplicate_is_ignored():
    b = bed()
    obs(b, 100, hr=70)
    obs(b, 100, hr=70)
    obs(b, 100, hr=150)  # same time point again: the first value stands
    obs(b, 200, hr=90)
    assert snap(b, 150).hr == 70
    assert b.vitals(T0 + 150)["hr"] == VitalView(70, T0 + 100, "live")
    assert len(b._vitals["hr"].items) == 2


def test_readings_before_the_admission_are_not_this_patients():
    b = bed()
    obs(b, -30, temp_c=39.0, hr=130)  # the previous patient's buffer, flushed late
    obs(b, 10, hr=80)
    assert snap(b, 20).hr == 80
    assert snap(b, 20).temp_c is None
    care(b, -5, "medication", drug="tocilizumab")
    obs(b, 30, temp_c=38.5)
    obs(b, 40, temp_c=37.0)
    assert snap(b, 40).fever_masked is False


# -- fever memory and masking ----------------------------------------------------------------


def test_fever_then_tocilizumab_masks_the_later_afebrile_state():
    b = bed()
    obs(b, 100, temp_c=38.7)
    care(b, 200, "medication", drug="tocilizumab")
    obs(b, 3600, temp_c=37.1)
    assert snap(b, 150).fever_masked is False  # not given yet
    s = snap(b, 3600)
    assert s.temp_c == 37.1
    assert s.fever_masked is True


def test_tocilizumab_before_any_fever_does_not_mask():
    b = bed()
    care(b, 50, "medication", drug="Tocilizumab")
    obs(b, 100, temp_c=38.5)
    obs(b, 3600, temp_c=37.0)
    assert snap(b, 3600).fever_masked is False
    care(b, 200, "medication", drug="paracetamol")  # entered late, given after the fever
    assert snap(b, 3600).fever_masked is True
    assert snap(b, 150).fever_masked is False


def test_a_drug_that_does_not_mask_does_not_mask():
    b = bed()
    obs(b, 100, temp_c=38.5)
    care(b, 200, "medication", drug="cefepime")
    assert snap(b, 300).fever_masked is False


def test_a_late_fever_reading_is_the_first_fever_as_of_its_own_time():
    b = bed()
    care(b, 200, "medication", drug="dexamethasone")
    obs(b, 300, temp_c=37.0)
    assert snap(b, 300).fever_masked is False
    obs(b, 100, temp_c=38.2)  # delivered late; measured before the drug
    assert snap(b, 300).fever_masked is True
    assert snap(b, 99).fever_masked is False  # a fever in the future of t is not known at t


def test_the_first_fever_is_the_earliest_even_when_delivered_last():
    b = bed()
    obs(b, 300, temp_c=38.4)
    care(b, 200, "medication", drug="ibuprofen")
    obs(b, 400, temp_c=37.2)
    assert snap(b, 400).fever_masked is False  # the drug came before the fever known so far
    obs(b, 100, temp_c=38.1)  # a gateway's buffer: the fever had begun before the drug
    assert snap(b, 400).fever_masked is True


def test_the_fever_survives_rotation_out_of_the_bounded_list():
    b = bed(keep=4)
    obs(b, 100, temp_c=38.9)
    care(b, 200, "medication", drug="tocilizumab")
    for i in range(20):
        obs(b, 300 + 60 * i, temp_c=37.0)
    assert len(b._vitals["temp_c"].items) == 4
    assert all(v == 37.0 for _, v in b._vitals["temp_c"].items)  # the fever reading is gone
    assert snap(b, 300 + 60 * 19).fever_masked is True


# -- care events as of t ---------------------------------------------------------------------


def test_vasopressors_start_and_stop_as_of_t():
    b = bed()
    care(b, 300, "vasopressor", drug="norepinephrine", action="stop")  # delivered first
    care(b, 100, "vasopressor", drug="norepinephrine", action="start", dose=0.05)
    care(b, 200, "vasopressor", drug="vasopressin", action="start")
    assert snap(b, 50).vasopressors == ()
    assert snap(b, 100).vasopressors == ("norepinephrine",)
    assert snap(b, 250).vasopressors == ("norepinephrine", "vasopressin")
    assert snap(b, 300).vasopressors == ("vasopressin",)


def test_no_oxygen_event_means_room_air_and_devices_change_as_of_t():
    b = bed()
    assert snap(b, 0).o2_device == "room_air"
    care(b, 200, "oxygen", device="hfnc", flow_lpm=40, fio2=0.5)
    care(b, 100, "oxygen", device="nasal_cannula", flow_lpm=2)
    s = snap(b, 150)
    assert (s.o2_device, s.o2_flow_lpm, s.fio2) == ("nasal_cannula", 2, None)
    s = snap(b, 200)
    assert (s.o2_device, s.o2_flow_lpm, s.fio2) == ("hfnc", 40, 0.5)
    assert snap(b, 99).o2_device == "room_air"


def test_oxygen_flow_comes_from_the_device_stream_when_the_event_has_none():
    b = bed()
    care(b, 100, "oxygen", device="simple_face_mask")
    obs(b, 120, o2_flow_lpm=6, fio2=0.4)
    s = snap(b, 130)
    assert (s.o2_device, s.o2_flow_lpm, s.fio2) == ("simple_face_mask", 6, 0.4)


def test_rotated_out_care_history_is_unknown_not_none():
    b = bed(keep=2)
    for t, device in ((100, "nasal_cannula"), (200, "simple_face_mask"), (300, "hfnc")):
        care(b, t, "oxygen", device=device)
    for t, action in ((100, "start"), (200, "stop"), (300, "start")):
        care(b, t, "vasopressor", drug="norepinephrine", action=action)
    assert snap(b, 150).o2_device is None  # its event was dropped: not "room_air"
    assert snap(b, 150).vasopressors is None
    assert snap(b, 250).o2_device == "simple_face_mask"
    assert snap(b, 250).vasopressors == ()
    assert snap(b, 300).vasopressors == ("norepinephrine",)


def test_neuro_assessment_and_acvpu_from_whichever_is_newer():
    b = bed()
    care(
        b,
        100,
        "neuro",
        ice_score=6,
        acvpu="V",
        seizure=False,
        motor_weakness=False,
        cerebral_edema=None,
    )
    s = snap(b, 100)
    assert (s.ice_score, s.acvpu, s.seizure, s.motor_weakness) == (6, "V", False, False)
    assert s.seizure_prolonged is None
    obs(b, 200, acvpu="A")
    assert snap(b, 200).acvpu == "A"
    obs(b, 50, acvpu="P")
    assert snap(b, 100).acvpu == "V"  # the assessment is newer than the late reading
    assert snap(b, 99).ice_score is None


def test_a_neuro_entry_updates_the_fields_it_carries_and_keeps_the_others():
    b = bed()
    care(b, 100, "neuro", ice_score=5, acvpu="V", seizure=True, cerebral_edema="focal")
    care(b, 200, "neuro", ice_score=8)  # an ICE-only entry does not erase the seizure
    s = snap(b, 200)
    assert (s.ice_score, s.acvpu, s.seizure, s.cerebral_edema) == (8, "V", True, "focal")
    assert s.motor_weakness is None  # never assessed
    care(b, 300, "neuro", seizure=False, cerebral_edema=None)  # stated: cleared
    s = snap(b, 300)
    assert (s.ice_score, s.seizure, s.cerebral_edema) == (8, False, None)
    assert snap(b, 250).seizure is True


def test_spo2_scale_comes_from_the_admission():
    b = BedState(Admission("P1", T0, spo2_scale=2), WINDOWS)
    assert b.snapshot_at(T0).spo2_scale == 2


# -- freshness: live, stale, lost, missing ---------------------------------------------------


def test_a_vital_goes_stale_then_lost_and_is_then_unknown():
    b = bed()
    obs(b, 0, hr=88)
    assert snap(b, 300).hr == 88
    assert snap(b, 301).hr is None  # a dead sensor is never normal
    assert b.vitals(T0 + 60)["hr"].status == "live"
    assert b.vitals(T0 + 61)["hr"].status == "stale"
    assert b.vitals(T0 + 300)["hr"].status == "stale"
    lost = b.vitals(T0 + 301)["hr"]
    assert lost == VitalView(88, T0, "lost")


def test_vitals_lists_configured_but_never_seen_vitals_as_missing_and_ignores_the_future():
    b = bed()
    obs(b, 0, hr=88)
    obs(b, 100, spo2=97)
    v = b.vitals(T0 + 10)
    assert set(v) == set(WINDOWS)
    assert v["temp_c"] == VitalView(None, None, "missing")
    assert v["spo2"].status == "missing"  # its only reading is after now
    assert v["hr"].status == "live"


def test_a_vital_without_a_window_gets_the_short_default():
    b = BedState(Admission("P1", T0), {"hr": (60.0, 300.0)})
    obs(b, 0, temp_c=37.0)
    assert b.vitals(T0 + 301)["temp_c"].status == "lost"
    assert b.snapshot_at(T0 + 301).temp_c is None
    assert set(b.vitals(T0)) == {"hr", "temp_c"}


# -- memory ----------------------------------------------------------------------------------


def _approx_size(b: BedState) -> int:
    seen: set[int] = set()

    def size(o) -> int:
        if id(o) in seen:
            return 0
        seen.add(id(o))
        n = sys.getsizeof(o)
        if isinstance(o, dict):
            n += sum(size(k) + size(v) for k, v in o.items())
        elif isinstance(o, list | tuple | set | frozenset):
            n += sum(size(x) for x in o)
        elif hasattr(o, "__slots__"):
            n += sum(size(getattr(o, s)) for s in o.__slots__ if hasattr(o, s))
        return n

    return size(b) - size(b.admission) - size(b.windows)


def test_ten_thousand_readings_stay_bounded():
    b = bed(keep=16)
    rng = random.Random(1)
    for i in range(10_000):
        t = i * 5.0 + rng.uniform(-40, 40)  # mostly in order, some late
        obs(
            b,
            max(t, 0.0),
            hr=rng.randint(50, 150),
            rr=rng.randint(8, 30),
            spo2=rng.randint(85, 100),
            sbp=rng.randint(80, 160),
            dbp=rng.randint(40, 90),
            map=rng.randint(55, 110),
            temp_c=round(rng.uniform(36, 40), 1),
            acvpu="A",
            o2_flow_lpm=2.0,
            fio2=0.28,
        )
        if i % 50 == 0:
            care(b, t, "medication", drug="paracetamol")
            care(b, t, "vasopressor", drug="norepinephrine", action=rng.choice(["start", "stop"]))
            care(b, t, "oxygen", device="nasal_cannula", flow_lpm=2)
            care(b, t, "neuro", ice_score=10, acvpu="A")
    assert set(b._vitals) == set(VITALS)
    for name, series in b._vitals.items():
        assert len(series.items) <= (MONITOR_KEEP if name in MONITOR else 16)
        assert [ts for ts, _ in series.items] == sorted(ts for ts, _ in series.items)
    for series in (b._oxygen, b._neuro, *b._pressors.values(), *b._meds.values()):
        assert len(series.items) <= 16
    assert _approx_size(b) < 80_000


# -- grading -------------------------------------------------------------------------------------


def test_day_label():
    assert day_label(None, T0) is None
    assert day_label(T0, T0) == "D+0"
    assert day_label(T0, T0 + 86399) == "D+0"
    assert day_label(T0, T0 + 2 * 86400 + 5) == "D+2"
    assert day_label(T0, T0 - 3600) == "D-1"


def test_the_crs_grade_is_unknown_once_temperature_is_lost():
    b = bed()
    obs(b, 0, temp_c=37.0, hr=80, rr=16, spo2=97, sbp=120, map=85, acvpu="A")
    graded = b.assess(T0 + 10)
    assert graded.crs.grade == 0
    for t in range(60, 9 * 3600 + 120, 60):  # the monitor keeps going; the thermometer not
        obs(b, t, hr=80, rr=16, spo2=97, sbp=120, map=85)
    later = b.assess(T0 + 9 * 3600 + 60)
    assert later.snapshot.temp_c is None
    assert later.vitals["temp_c"].status == "lost"
    assert later.crs.grade is None
    assert later.key() != graded.key()


def test_assess_and_state_payload():
    b = bed(infusion_ts=T0 - 2 * 86400)
    obs(b, 0, temp_c=38.6, hr=112, rr=22, spo2=95, sbp=118, map=80, acvpu="A")
    care(b, 5, "neuro", ice_score=10, acvpu="A", seizure=False, motor_weakness=False)
    a = b.assess(T0 + 10)
    assert a.at == T0 + 10
    assert a.crs.grade == 1
    assert a.fever_masked is False
    assert a.key() == (
        a.crs.grade,
        a.crs.at_least,
        a.icans.grade,
        a.icans.at_least,
        a.news2.band,
        a.news2.band_at_least,
        a.news2.single_parameter_3,
    )
    assert b.assess(T0 + 10, at=T0 - 1).crs.grade is None  # before any reading
    state = to_wire(bed_view("W1", "B3", a))
    assert {
        "ward",
        "bed",
        "patient_id",
        "ts",
        "crs_grade",
        "icans_grade",
        "news2",
        "risk",
        "vitals",
        "reasons",
        "crs_at_least",
        "icans_at_least",
        "day",
    } <= set(state)
    assert (state["ward"], state["bed"], state["patient_id"]) == ("W1", "B3", "P1")
    assert state["ts"].endswith("Z") and state["day"] == "D+2"
    assert state["crs_grade"] == 1
    assert {"total", "band", "band_at_least", "complete"} <= set(state["news2"])
    assert state["vitals"]["hr"] == {"value": 112, "ts": iso(T0), "status": "live"}
    assert state["vitals"]["fio2"]["status"] == "missing"
    assert state["vitals"]["fio2"]["ts"] is None
    assert all(isinstance(r, str) for r in state["reasons"])


def test_an_artefact_shorter_than_180_s_does_not_move_the_scales():
    """docs/clinical-decisions.md: HR, RR and SpO2 count once they persisted 180 s (the
    least extreme reading of the last 180 s), whatever the cadence."""
    b = bed()
    for t in range(0, 300, 5):
        obs(b, t, spo2=97, hr=80, rr=16)
    for t in range(300, 420, 5):  # a two-minute dropout, an impedance burst
        obs(b, t, spo2=75, hr=80, rr=40)
    s = snap(b, 415)
    assert (s.spo2, s.rr, s.hypoxaemia_sustained) == (97, 16, False)
    assert b.vitals(T0 + 415)["spo2"].value == 75  # shown as measured
    assert any("check the probe" in n for n in b.assess(T0 + 415).notes)
    for t in range(420, 500, 5):  # low for more than 180 s: it counts
        obs(b, t, spo2=76, hr=80, rr=38)
    s = snap(b, 495)
    assert (s.spo2, s.rr, s.hypoxaemia_sustained) == (76, 38, True)


# -- the masked-fever exception lasts one CRS episode (CLINICAL.md, revised) -----------------

H = 3600.0


def test_masked_fever_lasts_the_episode_and_ends_after_24_h_without_crs():
    b = bed()
    obs(b, 0, temp_c=38.6)
    care(b, 600, "medication", drug="tocilizumab")
    obs(b, 2 * H, temp_c=37.0)
    assert snap(b, 2 * H).fever_masked is True  # the same episode
    obs(b, 20 * H, temp_c=37.1)
    assert snap(b, 20 * H).fever_masked is True  # not 24 h without CRS yet
    obs(b, 25 * H, temp_c=37.0)
    assert snap(b, 25 * H).fever_masked is False  # resolved: a new grade needs fever again
    # a late SpO2 dropout days later is not CRS grade 2
    for t in range(int(50 * H), int(50 * H) + 600, 60):
        obs(b, t, spo2=82, temp_c=37.0)
    a = b.assess(T0 + 50 * H + 540)
    assert a.fever_masked is False and a.crs.grade == 0


def test_crs_support_running_keeps_the_episode_open():
    b = bed()
    obs(b, 0, temp_c=38.6)
    care(b, 600, "oxygen", device="nasal_cannula", flow_lpm=2)
    care(b, 700, "medication", drug="dexamethasone")
    obs(b, 30 * H, temp_c=37.0)
    assert snap(b, 30 * H).fever_masked is True  # still on oxygen: the episode goes on
    care(b, 31 * H, "oxygen", device="room_air")
    assert snap(b, 54 * H).fever_masked is True  # 23 h after the oxygen stopped
    assert snap(b, 56 * H).fever_masked is False


def test_a_new_episode_with_a_new_dose_masks_again():
    b = bed()
    obs(b, 0, temp_c=38.6)
    care(b, 600, "medication", drug="paracetamol")
    assert snap(b, 30 * H).fever_masked is False
    obs(b, 40 * H, temp_c=38.9)  # a new CRS fever
    care(b, 40 * H + 600, "medication", drug="tocilizumab")
    obs(b, 42 * H, temp_c=37.2)
    assert snap(b, 42 * H).fever_masked is True


def test_one_low_cuff_reading_treated_with_a_fluid_bolus_is_hypotension():
    b = bed()
    obs(b, 0, sbp=120, map=85, hr=80)
    obs(b, 900, sbp=84, map=62, hr=88)
    assert snap(b, 1000).hypotension_sustained is False
    care(b, 1100, "medication", drug="crystalloid bolus")
    assert snap(b, 1100).hypotension_sustained is True  # the care event defines it
    assert snap(b, 1099).hypotension_sustained is False
    obs(b, 1800, sbp=104, map=75, hr=84)  # responded to fluids
    assert snap(b, 1800).hypotension_sustained is False


def test_answers_kept_between_inputs_equal_a_fresh_beds():
    """BedState keeps answers asked several times for one time point (a vital's window,
    the neuro fields) until the next input: a bed asked at every step, late and
    out-of-order inputs included, answers exactly as a bed fed the same inputs and asked
    once."""
    rng = random.Random(18)
    inputs: list[tuple[str, float, dict]] = []
    for k in range(400):
        t = 60.0 * k + rng.choice((0, 0, 0, -300, -90))  # some late and out of order
        inputs.append(("obs", t, {"hr": rng.choice((0, 80, 125)), "spo2": rng.choice((82, 96))}))
        if k % 5 == 0:
            inputs.append(("obs", t, {"temp_c": rng.choice((37.0, 38.6)), "sbp": 95}))
        if k % 7 == 0:
            fields = rng.sample(["ice_score", "acvpu", "seizure", "cerebral_edema"], 2)
            values = {"ice_score": 7, "acvpu": rng.choice(("A", "V", None)), "seizure": False}
            inputs.append(("neuro", t - rng.choice((0, 600)), {f: values.get(f) for f in fields}))
        if k % 50 == 0:
            inputs.append(("medication", t, {"drug": "tocilizumab"}))
    warm = bed(keep=8)
    for n, (kind, t, data) in enumerate(inputs):
        if kind == "obs":
            obs(warm, t, **data)
        else:
            care(warm, t, kind, **data)
        if n % 3:
            continue
        fresh = bed(keep=8)
        for kind2, t2, data2 in inputs[: n + 1]:
            obs(fresh, t2, **data2) if kind2 == "obs" else care(fresh, t2, kind2, **data2)
        for at in (T0 + t, T0 + t + 30, T0 + t - 200, T0 + t + 400):
            warm.assess(at)  # ask twice: the second answer comes from what was kept
            assert warm.assess(at) == fresh.assess(at)


@pytest.mark.parametrize("seed", range(3))
def test_slow_inputs_kept_from_one_grading_to_the_next_equal_a_fresh_beds_over_days(seed):
    """BedState keeps what the scales read of the cuff, temperature, oxygen, ACVPU and care
    between gradings (_Slow) until a slow input, a status boundary, an input timed ahead or
    the masked fever's earliest resolution. A bed graded every 10 minutes for four days
    (episodes masked by tocilizumab and paracetamol, oxygen started and stopped, cuffs
    missed so that they go stale and lost, inputs timed ahead, 24 h quiet spells that end
    the mask) grades exactly as a bed fed the same inputs and asked once."""
    rng = random.Random(seed)
    inputs: list[tuple[str, float, dict]] = []
    fever_days = {0, 3}  # CRS episodes; days 1 and 2 only the monitor reports (the mask
    for k in range(4 * 144):  # ends during them, with nothing else arriving)
        t = 600.0 * k
        day = int(t // 86400)
        hot = day in fever_days and 6 <= (t % 86400) / 3600 < 14
        spo2 = rng.choice((88, 96)) if hot else 96  # low and persistent: CRS evidence
        inputs.append(("obs", t, {"hr": rng.choice((80, 118)), "spo2": spo2}))
        if day in (1, 2):
            continue
        if k % 6 == 0:
            inputs.append(("obs", t, {"temp_c": 38.8 if hot else 37.0}))
        if k % rng.choice((3, 9, 30)) == 0:  # cuffs sometimes hours apart
            inputs.append(("obs", t + rng.choice((0, 300)), {"sbp": rng.choice((84, 120))}))
        if hot and k % 24 == 0:
            drug = rng.choice(("tocilizumab", "paracetamol", "dexamethasone"))
            inputs.append(("medication", t + rng.choice((0, 900)), {"drug": drug}))
        if k % 40 == 0:
            device = "nasal_cannula" if hot else "room_air"
            inputs.append(("oxygen", t + rng.choice((0, 1200)), {"device": device}))
        if k == 143:  # the end of the first day: off oxygen
            inputs.append(("oxygen", t, {"device": "room_air"}))
        if k % 50 == 0:
            inputs.append(("neuro", t, {"acvpu": rng.choice(("A", "V")), "ice_score": 9}))
    inputs.sort(key=lambda x: x[1] if rng.random() < 0.9 else x[1] - 100)  # a few late
    warm = bed(keep=8, infusion_ts=T0 - 3600)
    compared = masked = 0
    resolved = False  # the first episode's mask ended on the quiet days
    for n, (kind, t, data) in enumerate(inputs):
        obs(warm, t, **data) if kind == "obs" else care(warm, t, kind, **data)
        if n % 4 or n + 1 < len(inputs) and inputs[n + 1][1] == t:
            continue
        fresh = bed(keep=8, infusion_ts=T0 - 3600)
        for kind2, t2, data2 in inputs[: n + 1]:
            obs(fresh, t2, **data2) if kind2 == "obs" else care(fresh, t2, kind2, **data2)
        for at in (T0 + t, T0 + t + 250, T0 + t + 599):
            a = warm.assess(at)
            assert a == fresh.assess(at), (n, at - T0)
            compared += 1
            masked += a.fever_masked
            resolved = resolved or (1 <= (at - T0) / 86400 < 3 and not a.fever_masked)
    assert compared > 300 and masked > 30 and resolved


def _graded(a) -> tuple:
    """An assessment without its time: what the clock alone must not change."""
    return (a.snapshot, a.crs, a.icans, a.news2, a.vitals, a.fever_masked, a.notes)


@pytest.mark.parametrize("seed", range(6))
def test_nothing_changes_with_time_alone_before_steady_until(seed):
    """The ward's clock pass skips a bed until its assessment's `steady_until` (the next
    vital due to go stale or lost): at every moment before it, the bed graded afresh
    gives the same grades, vitals and notes. Walked as the clock pass does, from one
    `steady_until` to the next between inputs: monitor streams at 1- and 5-minute
    cadences with gaps, cuff readings (NEWS2 reads the one before the newest), ACVPU,
    oxygen, and a fluid bolus and an oxygen entry timed ahead of the readings."""
    rng = random.Random(seed)
    b = bed(infusion_ts=T0 - 3600)
    every = rng.choice((60.0, 300.0))
    t = cuff_t = cuff_gap = 0.0
    checked = 0
    for k in range(150):
        gap = every * rng.choice((1, 1, 1, 2, 7, 30))  # sometimes a long gap: lost feeds
        obs(b, t, hr=rng.choice((0, 80, 125)), spo2=rng.choice((85, 96)), rr=16)
        if t + 5 - cuff_t >= cuff_gap:  # cuffs 4 to 100 min apart: at 65-130 min the one
            cuff_t, cuff_gap = t + 5, rng.choice((240, 4000, 6000))  # before the newest
            obs(b, cuff_t, sbp=rng.choice((82, 110, 150)), map=rng.choice((60, 80)))  # expires
        if k % 9 == 0:
            obs(b, t + 7, temp_c=rng.choice((37.0, 38.7)), acvpu=rng.choice(("A", "V")))
        if k % 11 == 0:
            care(b, t, "oxygen", device=rng.choice(("room_air", "nasal_cannula")), flow_lpm=2)
        if k % 13 == 0:
            care(b, t + 20, "medication", drug="sodium chloride 0.9% bolus")  # ahead
        if k % 17 == 0:
            care(b, t + 30, "oxygen", device="simple_face_mask", flow_lpm=8)  # ahead
        now, following = T0 + t + 8, T0 + t + gap  # graded now; the next input then
        while now < following:
            a = b.assess(now)
            assert a.steady_until >= a.at
            end = min(a.steady_until, following)
            for u in (
                now + 1,
                (now + end) / 2,
                end - 0.5,
                *(rng.uniform(now, end) for _ in range(3)),
            ):
                if now < u < end:
                    assert _graded(b.assess(u)) == _graded(a), (k, u - now)
                    checked += 1
            now = max(a.steady_until, now + 1)  # the clock pass's next look
        t += gap
    assert checked > 500
