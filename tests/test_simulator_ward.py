"""The simulated ward (devices/ward.py, bed.py, artefacts.py, link.py, cli.py): reproducible
message streams, device cadences, artefacts that are recorded as ground truth, payloads the
project's decoders accept, and a real broker + daemon storing a simulated ward with no
rejection."""

from __future__ import annotations

import argparse
import asyncio
import collections
import time

import numpy as np
import orjson
import pytest

from devices import cli
from devices.artefacts import KINDS
from devices.clock import SimClock, parse_start
from devices.ward import WardOptions, generate, run_ward
from monitor.ingest import decode_fhir, decode_hl7, decode_json
from monitor.ingest.validate import parse_ts
from tests.conftest import wait_for
from tests.support.db import count, query

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DECODE = {
    "vitals": decode_json.decode_vitals,
    "fhir": decode_fhir.decode_fhir,
    "hl7": decode_hl7.decode_hl7,
}


def run_gen(tmp_path, name: str = "w", **kw):
    kw = {"beds": 3, "days": 0.25, "start": T0, "mqtt": False, **kw}
    rec, tru = tmp_path / f"{name}.rec.jsonl", tmp_path / f"{name}.truth.jsonl"
    stats = generate(WardOptions(record=str(rec), truth=str(tru), **kw))
    return rec, tru, stats


def lines(path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def readings(records: list[dict]) -> list[tuple[str, str, float, float, dict]]:
    """(bed, kind, delivered ts, reading ts, values) of every vitals message, decoded by
    the project's decoders with `now` = the simulated time it was published."""
    out = []
    for r in records:
        _, _, bed, kind = r["topic"].split("/")
        if kind in DECODE:
            now = parse_ts(r["ts"])
            for obs in DECODE[kind](r["payload"].encode(), now):
                out.append((bed, kind, now, obs.ts, obs.values))
    return out


# -- reproducible -----------------------------------------------------------------------------


def test_same_seed_same_messages_and_truth_different_seed_different(tmp_path):
    a = run_gen(tmp_path, "a", seed=5, artefact_scale=5, demo=True)
    b = run_gen(tmp_path, "b", seed=5, artefact_scale=5, demo=True)
    c = run_gen(tmp_path, "c", seed=6, artefact_scale=5, demo=True)
    assert a[0].read_bytes() == b[0].read_bytes()
    assert a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() != c[0].read_bytes()
    assert a[1].read_bytes() != c[1].read_bytes()
    assert a[2].messages == len(lines(a[0])) > 3 * 0.25 * 86400 / 5 * 0.9


def test_a_bed_is_the_same_whatever_the_number_of_beds(tmp_path):
    one = [r for r in lines(run_gen(tmp_path, "one", beds=1)[0]) if "/bed01/" in r["topic"]]
    three = [r for r in lines(run_gen(tmp_path, "three", beds=3)[0]) if "/bed01/" in r["topic"]]
    assert one == three


# -- what each bed sends --------------------------------------------------------------------


def test_admit_first_then_online_and_nothing_before_admission(tmp_path):
    records = lines(run_gen(tmp_path, days=0.05)[0])
    by_bed = collections.defaultdict(list)
    for r in records:
        by_bed[r["topic"].split("/")[2]].append(r)
    assert sorted(by_bed) == ["bed01", "bed02", "bed03"]
    for msgs in by_bed.values():
        admit = orjson.loads(msgs[0]["payload"])
        assert msgs[0]["topic"].endswith("/admit")
        assert set(admit) == {
            "patient_id",
            "ts",
            "age",
            "product",
            "indication",
            "infusion_ts",
            "spo2_scale",
        }
        assert parse_ts(admit["ts"]) == T0 and admit["spo2_scale"] == 1
        assert T0 - 86400 <= parse_ts(admit["infusion_ts"]) <= T0
        assert (msgs[1]["topic"].endswith("/device"), msgs[1]["payload"]) == (True, "online")
    for _, _, delivered, ts, _ in readings(records):
        assert T0 <= ts <= delivered  # never before the admission, never in the future


def test_each_protocol_decodes_with_the_projects_decoders(tmp_path):
    records = lines(run_gen(tmp_path, days=0.5, demo=True, cohort="lymphoma")[0])
    kinds = collections.Counter(
        (r["topic"].split("/")[2], r["topic"].split("/")[3]) for r in records
    )
    assert kinds["bed01", "vitals"] > 8000 and kinds["bed02", "fhir"] > 8000
    assert kinds["bed03", "hl7"] > 8000
    assert not kinds["bed01", "fhir"] and not kinds["bed02", "hl7"]  # one protocol per bed
    seen = collections.defaultdict(set)
    for bed, _, _, _, values in readings(records):  # raises Rejected on any bad payload
        seen[bed] |= set(values)
    for bed in ("bed01", "bed02", "bed03"):
        assert {"hr", "spo2", "rr", "sbp", "dbp", "map", "temp_c"} <= seen[bed]
    assert "acvpu" in seen["bed01"]  # JSON carries ACVPU; FHIR/HL7 beds chart it as neuro
    for r in records:
        kind = r["topic"].split("/")[3]
        now = parse_ts(r["ts"])
        if kind == "care":
            ev = decode_json.decode_care(r["payload"].encode(), now)
            assert ev.ts <= now
        elif kind == "admit":
            decode_json.decode_admit(r["payload"].encode(), now)
    neuro_beds = {
        r["topic"].split("/")[2]
        for r in records
        if r["topic"].endswith("/care") and orjson.loads(r["payload"]).get("acvpu")
    }
    assert {"bed02", "bed03"} <= neuro_beds


def test_device_cadences(tmp_path):
    records = lines(
        run_gen(tmp_path, days=2, artefact_scale=0, demo=True, cohort="lymphoma", seed=2)[0]
    )
    per_bed = collections.defaultdict(dict)
    for bed, _, _, ts, values in readings(records):
        assert ts not in per_bed[bed]  # the vitals of one time point travel in one message
        per_bed[bed][ts] = values
    febrile_rounds = 0
    for points in per_bed.values():
        times = sorted(points)
        fast = [t for t in times if "hr" in points[t]]
        assert set(np.diff(fast)) == {5.0}  # HR, SpO2, RR every 5 s
        bp = [t for t in times if "sbp" in points[t]]
        gaps = np.diff(bp) / 60
        for gap, t in zip(gaps, bp, strict=False):
            if gap < 14.9:  # only a nurse repeating a low reading, 2-4 min later
                assert points[t]["sbp"] < 90 and 1.9 <= gap <= 4.1
        assert gaps.max() <= 60.1  # NIBP every 15-60 min
        assert ((gaps >= 14.9) & (gaps <= 15.1)).any()  # more often when unstable
        temps = [t for t in times if "temp_c" in points[t]]
        tgaps = np.diff(temps) / 3600
        assert tgaps.min() >= 0.8 and tgaps.max() <= 4.2  # every few hours
        for t, nxt in zip(temps, temps[1:], strict=False):
            if points[t]["temp_c"] >= 38.0:  # hourly when febrile
                febrile_rounds += 1
                assert nxt - t <= 71 * 60
    assert febrile_rounds >= 3


def test_every_artefact_kind_appears_and_is_in_the_truth(tmp_path):
    rec, tru, stats = run_gen(tmp_path, days=2, artefact_scale=3, seed=4)
    records, truth = lines(rec), lines(tru)
    arte = collections.defaultdict(list)
    for t in truth:
        if "artefact" in t:
            arte[t["artefact"]].append(t)
    assert set(arte) == {*KINDS, "online"}
    assert all(t["patient_id"].startswith("SIM-") for t in truth)
    points = readings(records)

    def inside(kind, bed, ts):
        return any(
            t["bed"] == bed
            and parse_ts(t["ts"])
            <= ts
            < parse_ts(t["ts"]) + t.get("duration_s", t.get("held_s", 0))
            for t in arte[kind]
        )

    zero_hr = [(b, ts) for b, _, _, ts, v in points if v.get("hr") == 0]
    assert zero_hr and all(inside("lead_off", b, ts) for b, ts in zero_hr)
    no_spo2 = [(b, ts) for b, _, _, ts, v in points if "hr" in v and "spo2" not in v]
    assert no_spo2 and all(inside("spo2_dropout", b, ts) for b, ts in no_spo2)
    assert any(
        inside("motion", b, ts) and v["spo2"] < 89 for b, _, _, ts, v in points if "spo2" in v
    )
    sent = collections.Counter(
        (r["topic"], r["payload"]) for r in records if r["topic"].rsplit("/", 1)[1] in DECODE
    )
    doubled = collections.Counter(topic for (topic, _), n in sent.items() if n == 2)
    assert max(sent.values()) == 2
    assert doubled == collections.Counter(t["topic"] for t in arte["duplicate"])
    for t in arte["late"]:  # held, then delivered together at the end, original ts kept
        start, end = parse_ts(t["ts"]), parse_ts(t["ts"]) + t["held_s"]
        held = [(d, ts) for b, _, d, ts, _ in points if b == t["bed"] and start <= ts < end]
        assert held and all(d == end for d, _ in held)
    for t in arte["offline"]:  # the will; no readings while away; then online again
        start, end = parse_ts(t["ts"]), parse_ts(t["ts"]) + t["duration_s"]
        topic = f"crs/ward1/{t['bed']}/device"
        assert {"ts": t["ts"], "topic": topic, "payload": "offline"} in records
        assert any(
            r["topic"] == topic and r["payload"] == "online" and parse_ts(r["ts"]) == end
            for r in records
        )
        assert not [ts for b, _, _, ts, _ in points if b == t["bed"] and start <= ts < end]
    assert stats.artefacts == collections.Counter({k: len(v) for k, v in arte.items()})


def test_truth_records_every_grade_change(tmp_path):
    truth = lines(
        run_gen(tmp_path, days=2, demo=True, cohort="lymphoma", beds=6, seed=3, fast_interval_s=60)[
            1
        ]
    )
    grades = [t for t in truth if "crs_grade" in t]
    last = {}
    for t in grades:
        key = (t["ward"], t["bed"])
        pair = (t["crs_grade"], t["icans_grade"])
        assert pair != last.get(key)  # a change, or the first line of the patient
        if key not in last:
            assert pair == (0, 0) and "planned" in t
        last[key] = pair
    assert any(t["crs_grade"] >= 1 for t in grades)
    assert [parse_ts(t["ts"]) for t in truth] == sorted(parse_ts(t["ts"]) for t in truth)


# -- clock and command line -------------------------------------------------------------------


def test_sim_clock_and_start():
    wall = [1000.0]
    clock = SimClock(T0, 120, wall_start=1000.0, wall=lambda: wall[0])
    assert clock() == T0
    wall[0] = 1010.0
    assert clock() == T0 + 1200 and clock.wall_at(T0 + 2400) == 1020.0
    assert parse_start(None, T0 + 0.7) == T0
    assert parse_start("-2d", T0) == T0 - 2 * 86400
    assert parse_start("-90m", T0) == T0 - 5400
    assert parse_start("now-36h", T0) == parse_start("-36h", T0) == T0 - 36 * 3600
    assert parse("--start", "now-2d").start == "now-2d"
    assert parse_start("2026-01-01T01:00:00+01:00", 0) == T0
    with pytest.raises(ValueError, match="zone"):
        parse_start("2026-01-01T00:00:00", 0)
    with pytest.raises(ValueError):
        parse_start("yesterday", 0)


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(argv)


async def test_cli_no_mqtt_writes_record_and_truth(tmp_path, capsys):
    rec, tru = tmp_path / "r.jsonl", tmp_path / "t.jsonl"
    args = parse(
        "--no-mqtt",
        "--beds",
        "2",
        "--days",
        "0.02",
        "--start=-1d",
        "--record",
        str(rec),
        "--truth",
        str(tru),
        "--protocol",
        "hl7",
    )
    assert await cli.run(args) == 0
    topics = {r["topic"].split("/", 3)[3] for r in lines(rec)}
    assert topics == {"admit", "device", "hl7", "care"} or topics == {"admit", "device", "hl7"}
    assert lines(tru)[0]["crs_grade"] == 0
    assert "2 beds" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--speed", "0"), "--speed"),
        (("--speed", "5000"), "--speed"),
        (("--beds", "0"), "--beds"),
        (("--start", "soon"), "offset"),
        (("--ward", "a/b"), "--ward"),
        (("--days", "0"), "--days"),
    ],
)
async def test_cli_bad_options_exit_2_with_one_line(argv, message, capsys):
    assert await cli.run(parse("--no-mqtt", *argv)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


async def test_cli_unreachable_broker_exits_1(capsys):
    from tests.support.brokers import free_port

    args = parse("--port", str(free_port()), "--days", "0.01", "--beds", "1")
    assert await cli.run(args) == 1
    assert "broker" in capsys.readouterr().err


# -- over a real broker -------------------------------------------------------------------------


async def test_daemon_stores_a_simulated_ward_with_no_rejection(broker, make_daemon, tmp_path):
    """3 beds (JSON, FHIR, HL7), every artefact kind, a daemon on the simulator's clock."""
    # today 08:00 UTC: the ward's rhythm (cuffs less often at night) then draws the same
    # artefacts at any hour the suite runs (started at the present, it missed cuff_low
    # when run around 21:30 UTC)
    clock = SimClock(float(int(time.time()) // 86400 * 86400 + 8 * 3600), 1800)
    d = await make_daemon(clock=clock)
    db = d.cfg["storage.path"]
    rec, tru = tmp_path / "rec.jsonl", tmp_path / "truth.jsonl"
    opts = WardOptions(
        beds=3,
        host=broker.host,
        port=broker.port,
        prefix=d.cfg.prefix,
        days=1.5 / 24,
        speed=1800,
        seed=3,
        demo=True,
        artefact_scale=20,
        record=str(rec),
        truth=str(tru),
    )
    began = time.monotonic()
    stats = await run_ward(opts, clock, asyncio.Event())
    assert time.monotonic() - began < 30
    assert set(stats.artefacts) == {*KINDS, "online"}
    records = lines(rec)
    expected = {(bed, ts) for bed, _, _, ts, _ in readings(records)}
    cares = {(r["topic"], r["payload"]) for r in records if r["topic"].endswith("/care")}

    def stored():
        return {(b, ts) for b, ts in query(db, "SELECT bed, ts FROM observations")}

    await wait_for(
        lambda: stored() == expected and count(db, "care_events") == len(cares),
        what="every reading and care event stored",
    )
    assert count(db, "rejections") == 0
    assert count(db, "admissions") == 3
    assert {b for b, _ in expected} == {"bed01", "bed02", "bed03"}
    assert {s for (s,) in query(db, "SELECT source FROM observations")} == {"json", "fhir", "hl7"}
    offline = {t["bed"] for t in lines(tru) if t.get("artefact") == "offline"}
    await wait_for(
        lambda: (
            {b for (b,) in query(db, "SELECT bed FROM device_events WHERE state='offline'")}
            == offline
        ),
        what="the broker's Last Will for each bed that went offline",
    )


async def test_behind_the_clock_it_catches_up_in_order(broker, listen, tmp_path):
    """Started an hour in the past at 3600x: the backlog goes out at once, in order, exactly
    as recorded (the broker's Last Will standing in for the device's `offline`)."""
    start = float(int(time.time())) - 3600
    clock = SimClock(start, 3600, wall_start=time.time() - 1)
    opts = WardOptions(
        beds=3,
        host=broker.host,
        port=broker.port,
        prefix="simcatch",
        days=1 / 24,
        speed=3600,
        seed=3,
        artefact_scale=20,
        record=str(tmp_path / "rec.jsonl"),
    )
    async with listen("simcatch/#") as listener:
        began = time.monotonic()
        await run_ward(opts, clock)
        assert time.monotonic() - began < 20
        records = lines(tmp_path / "rec.jsonl")
        await wait_for(lambda: len(listener.messages) >= len(records), what="all delivered")
    for bed in ("bed01", "bed02", "bed03"):
        sent = [(r["topic"], r["payload"].encode()) for r in records if f"/{bed}/" in r["topic"]]
        got = [(t, p) for t, p, _ in listener.messages if f"/{bed}/" in t]
        assert got == sent


async def test_run_ward_stops_when_asked(broker):
    stop = asyncio.Event()
    opts = WardOptions(beds=2, host=broker.host, port=broker.port, prefix="simstop", speed=1)
    task = asyncio.create_task(run_ward(opts, None, stop))
    await asyncio.sleep(0.5)
    stop.set()
    stats = await asyncio.wait_for(task, 10)
    assert stats.messages >= 4  # admit and online of each bed


async def test_a_second_run_discharges_the_first_patients(broker, make_daemon):
    """The daemon on the wall clock, the simulations in the past (--start=-20m): a re-run
    with --discharge-first replaces the earlier admissions instead of being rejected."""
    d = await make_daemon()
    db = d.cfg["storage.path"]
    now = float(int(time.time()))
    for n, (start, first) in enumerate(((now - 1200, False), (now - 600, True)), start=1):
        opts = WardOptions(
            beds=2,
            host=broker.host,
            port=broker.port,
            prefix=d.cfg.prefix,
            days=300 / 86400,
            speed=3600,
            start=start,
            discharge_first=first,
            seed=n,
            artefact_scale=0,
        )
        await run_ward(opts)
    await wait_for(
        lambda: (
            count(db, "admissions") == 4
            and count(db, "admissions", "discharged_ts IS NOT NULL") == 2
        ),
        what="two admissions per bed, the first discharged",
    )
    await wait_for(
        lambda: count(db, "observations", "ts >= ?", now - 600) == 2 * 59,
        what="the second run's readings (every 5 s, from +5 s to +295 s)",
    )
    assert count(db, "rejections") == 0
    patients = query(db, "SELECT bed, patient_id FROM admissions WHERE discharged_ts IS NULL")
    assert len(patients) == 2
    assert {
        p
        for (p,) in query(
            db, "SELECT DISTINCT patient_id FROM observations WHERE ts >= ?", now - 600
        )
    } == {p for _, p in patients}
