"""Faults, each with real components (Mosquitto, the daemon, its SQLite file): a full disk,
the clock jumping forwards and backwards, another process holding the write lock during a
burst. What the daemon must do: refuse nothing that is valid, lose nothing, acknowledge
nothing that is not committed, say so on /healthz and as an alert, and recover by itself.

The faults covered elsewhere (a dashboard client that stops reading, a broker restart, a
SIGKILL mid-stream) are listed with these in docs/faults.md.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import wait_for
from tests.support.brokers import TestBroker
from tests.support.db import count, query

HOUR = 3600.0

# Whether the broker keeps unacknowledged messages for a disconnected session is what some
# of these tests prove the daemon relies on; amqtt keeps nothing for an offline client.
needs_session_broker = pytest.mark.skipif(
    TestBroker(Path("/tmp")).kind != "mosquitto",
    reason="needs a broker that keeps offline sessions (Mosquitto); amqtt does not",
)


async def health(d) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{d.http_port}/healthz") as r:
            return r.status, await r.json()


def received(d, kind: str = "vitals") -> float:
    return (
        d.metrics.registry.get_sample_value("crswatch_messages_received_total", {"kind": kind})
        or 0.0
    )


def store_errors(d) -> float:
    return d.metrics.registry.get_sample_value("crswatch_store_errors_total")


def spy_acks(d) -> list[int]:
    """Record every PUBACK the daemon asks for (message ids), then let it through."""
    acked: list[int] = []
    real = d.pipeline.ack

    def ack(acks):
        acked.extend(mid for _, mid, qos in acks if qos > 0)
        real(acks)

    d.pipeline.ack = ack
    return acked


def running(d) -> bool:
    """Every loop of the daemon is still running (none ended on an exception)."""
    return all(not t.done() for t in d.tasks)


def rejected_rows(db, p: str) -> int:
    """Rejections stored for messages to this test's beds (see `rejections`)."""
    return count(db, "rejections", "topic LIKE ?", f"{p}/w%")


def store_alerts(d) -> list[dict]:
    return [a for a in d.alerts.active() if a["kind"] == "store" and a["ward"] == "_daemon"]


async def admit(publisher, p, ts, ward="w1", bed="b1", patient="P1"):
    await publisher(f"{p}/{ward}/{bed}/admit", {"patient_id": patient, "ts": ts})


# -- a full disk -------------------------------------------------------------------------


async def page_count(d) -> int:
    return await d.store.transact(lambda c: c.execute("PRAGMA page_count").fetchone()[0])


async def set_max_pages(d, n: int) -> int:
    """The writer connection's own limit on the database size: past it, SQLite answers
    SQLITE_FULL ("database or disk is full") exactly as it does for a full disk."""
    return await d.store.transact(
        lambda c: c.execute(f"PRAGMA max_page_count={int(n)}").fetchone()[0]
    )


async def fill_the_disk(d, publisher, p, now, fillers: int) -> None:
    """Leave no room (the database may not grow by one page), then let the ward's own
    readings use up what free space the pages had until a commit fails."""
    await set_max_pages(d, await page_count(d))
    for i in range(fillers):
        await publisher(f"{p}/w1/b2/vitals", {"ts": now - 3000 + i, "hr": 70})
    await wait_for(lambda: not d.pipeline.store_ok, what="a commit refused: disk full")


@needs_session_broker
async def test_full_disk_is_503_raises_an_alert_acks_nothing_and_recovers(
    make_daemon, publisher, listen
):
    d = await make_daemon(storage={"busy_timeout_s": 0.2}, alerts={"resolve_hold_s": 0.0})
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    async with listen(f"{p}/_daemon/alerts") as paged:
        acked = spy_acks(d)
        now = time.time()
        await admit(publisher, p, now - 4000, bed="b1", patient="P1")
        await admit(publisher, p, now - 4000, bed="b2", patient="P2")
        await wait_for(lambda: count(db, "admissions") == 2)
        fillers, n = 300, 200
        await fill_the_disk(d, publisher, p, now, fillers)
        for i in range(n):  # the readings that arrive while the disk is full
            await publisher(f"{p}/w1/b1/vitals", {"ts": now - 1000 + i, "hr": 60 + i % 50})
        await wait_for(lambda: received(d) == fillers + n, what="every reading received")
        errors = store_errors(d)
        await wait_for(lambda: store_errors(d) >= errors + 2, what="two more failed retries")

        status, body = await health(d)
        assert status == 503
        assert body["problems"] == [
            "store: not writable (OperationalError: database or disk is full)"
        ]
        await wait_for(lambda: store_alerts(d), what="a store alert (tick runs every second)")
        alert = store_alerts(d)[0]
        assert alert["tier"] == 3 and "database or disk is full" in alert["message"]
        # staff are paged over MQTT even though the alert cannot be stored yet
        raised = await wait_for(
            lambda: [a for a in paged.json() if a["event"] == "raised"],
            what="the store alert published",
        )
        assert raised[0]["kind"] == "store" and raised[0]["id"] == alert["id"]
        # Nothing of the full-disk period was stored, and nothing was acknowledged that is not
        # stored: the broker still holds every one of those messages.
        assert count(db, "observations", "bed='b1'") == 0
        stored_fillers = count(db, "observations", "bed='b2'")
        assert stored_fillers < fillers
        assert len(acked) == 2 + stored_fillers
        assert running(d)

        assert await set_max_pages(d, 1_000_000) == 1_000_000  # space freed
        await wait_for(lambda: count(db, "observations") == fillers + n, what="all stored")
        await wait_for(lambda: d.pipeline.store_ok)
        assert await health(d) == (200, {"status": "ok", "problems": []})
        assert query(db, "SELECT count(DISTINCT ts) FROM observations WHERE bed='b1'") == [(n,)]
        assert len(acked) == 2 + fillers + n  # each acknowledged once, after its commit
        assert rejected_rows(db, p) == 0
        assert d.metrics.registry.get_sample_value("crswatch_messages_duplicate_total") == 0
        await wait_for(lambda: not store_alerts(d), what="the store alert resolved")
        await wait_for(
            lambda: [a for a in paged.json() if a["event"] == "resolved"],
            what="its resolution published",
        )
    # the alert and its resolution were stored too, once the disk had room again
    await wait_for(lambda: count(db, "alert_events", "event='resolved'") >= 1)
    assert count(db, "alerts", "kind='store' AND ward='_daemon'") == 1


@needs_session_broker
async def test_full_disk_acks_nothing_so_a_restarted_daemon_gets_everything(make_daemon, publisher):
    """The proof that nothing was acknowledged while the disk was full: stop the daemon
    then (its memory of those messages is gone) and start a new one on the same session:
    the broker sends every message again, and each is stored once."""
    d = await make_daemon(storage={"busy_timeout_s": 0.2})
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now - 4000, bed="b1", patient="P1")
    await admit(publisher, p, now - 4000, bed="b2", patient="P2")
    await wait_for(lambda: count(db, "admissions") == 2)
    fillers, n = 300, 200
    await fill_the_disk(d, publisher, p, now, fillers)
    for i in range(n):
        await publisher(f"{p}/w1/b1/vitals", {"ts": now - 1000 + i, "hr": 60 + i % 50})
    await wait_for(lambda: received(d) == fillers + n, what="every reading received")
    stored_before = count(db, "observations")
    await d.stop()  # still full: it must not commit, nor acknowledge, on its way out
    assert count(db, "observations") == stored_before < fillers + n

    d2 = await make_daemon(d.cfg)  # a new connection: no page limit, the disk has room
    await wait_for(
        lambda: count(db, "observations") == fillers + n,
        timeout=30,
        what="every message redelivered and stored",
    )
    assert query(
        db, "SELECT bed, count(*), count(DISTINCT ts) FROM observations GROUP BY bed ORDER BY bed"
    ) == [("b1", n, n), ("b2", fillers, fillers)]
    assert rejected_rows(db, p) == 0
    assert (await health(d2))[0] == 200


# -- the clock jumping -------------------------------------------------------------------


class JumpingClock:
    """The daemon's wall clock: real time plus an offset the test changes at will."""

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


NORMAL = {"temp_c": 37.0, "hr": 80, "rr": 14, "spo2": 97, "sbp": 120, "acvpu": "A"}
FAST_AND_BP = ("hr", "rr", "spo2", "sbp")


def bed_states(states, bed="b1") -> list[dict]:
    return [s for s in states.json("/state") if s.get("bed") == bed and s.get("patient_id")]


def rejections(heard, p: str) -> list[str]:
    """Reasons published for the beds of this test (amqtt 0.12 may hand the daemon a
    retained message of another test's topic on subscribe: that one is rejected too)."""
    return [r["reason"] for r in heard.json("/rejected") if r["topic"].startswith(f"{p}/w")]


async def test_clock_jumping_forward_makes_vitals_lost_never_normal(make_daemon, publisher, listen):
    clock = JumpingClock()
    d = await make_daemon(clock=clock, ingest={"max_past_s": 12 * HOUR})
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    t0 = clock()
    async with listen(f"{p}/w1/b1/state", f"{p}/rejected") as heard:
        await admit(publisher, p, t0 - 600)
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 - 5, **NORMAL})
        first = await wait_for(
            lambda: [s for s in bed_states(heard) if s["crs_grade"] == 0],
            what="graded normal while the readings are live",
        )
        assert all(first[-1]["vitals"][v]["status"] == "live" for v in NORMAL)

        clock.offset += 10 * HOUR  # every reading is now ten hours old
        seen = len(heard.messages)
        lost = await wait_for(
            lambda: [s for s in bed_states(heard)[-1:] if s["vitals"]["hr"]["status"] == "lost"],
            what="the state says lost without any message arriving",
        )
        s = lost[-1]
        assert {v: s["vitals"][v]["status"] for v in (*FAST_AND_BP, "temp_c", "acvpu")} == {
            "hr": "lost",
            "rr": "lost",
            "spo2": "lost",
            "sbp": "lost",
            "temp_c": "lost",
            "acvpu": "stale",
        }
        assert s["vitals"]["hr"]["value"] == 80  # last seen, still shown
        assert s["crs_grade"] is None and s["news2"]["band"] is None  # unknown, not normal
        # from the first lost state on, nothing ever says normal again
        after = bed_states(heard)[
            next(
                i for i, x in enumerate(bed_states(heard)) if x["vitals"]["hr"]["status"] == "lost"
            ) :
        ]
        assert all(x["crs_grade"] != 0 for x in after)

        # A reading stamped at the old time is ten hours old now: within max_past_s
        # (12 h), so stored; it is old, so it changes nothing in what is live.
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 + 1, "hr": 82})
        await wait_for(lambda: count(db, "observations") == 2, what="old reading stored")
        late = await wait_for(
            lambda: [s for s in bed_states(heard) if s["vitals"]["hr"]["value"] == 82],
            what="the old reading shown as the last one seen",
        )
        assert late[-1]["vitals"]["hr"]["status"] == "lost" and late[-1]["crs_grade"] is None
        # Four more hours: the old time is now beyond max_past_s, and is rejected.
        clock.offset += 4 * HOUR
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 + 2, "hr": 83})
        reasons = await wait_for(lambda: rejections(heard, p), what="the rejection published")
        assert len(reasons) == 1
        assert reasons[0].startswith("ts: ") and "s in the past (limit 43200 s)" in reasons[0]
        assert count(db, "observations") == 2 and rejected_rows(db, p) == 1
        assert all(x["crs_grade"] != 0 for x in bed_states(heard)[seen:])

        # Readings at the daemon's new time are live again, and graded.
        await publisher(f"{p}/w1/b1/vitals", {"ts": clock() - 5, **NORMAL})
        await wait_for(
            lambda: [
                s
                for s in bed_states(heard)[-1:]
                if s["crs_grade"] == 0 and s["vitals"]["hr"]["status"] == "live"
            ],
            what="graded again once live readings arrive",
        )
    assert running(d) and (await health(d))[0] == 200


async def test_clock_jumping_backward_rejects_the_future_and_recovers(
    make_daemon, publisher, listen
):
    clock = JumpingClock()
    d = await make_daemon(clock=clock)
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    t0 = time.time()
    async with listen(f"{p}/w1/b1/state", f"{p}/rejected") as heard:
        await admit(publisher, p, t0 - 600)
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 - 5, **NORMAL})
        await wait_for(lambda: [s for s in bed_states(heard) if s["crs_grade"] == 0])

        clock.offset = -2 * HOUR  # the daemon's clock falls two hours behind the devices'
        for i in range(3):
            await publisher(f"{p}/w1/b1/vitals", {"ts": time.time() - i, "hr": 90 + i})
        reasons = await wait_for(
            lambda: len(rejections(heard, p)) == 3 and rejections(heard, p),
            what="three rejections published",
        )
        for reason in reasons:
            assert reason.startswith("ts: ") and "s in the future (limit 300 s)" in reason
            ahead = float(reason.split(" is ")[1].split(" s in")[0])
            assert 2 * HOUR - 10 <= ahead <= 2 * HOUR + 10
        assert count(db, "observations") == 1 and rejected_rows(db, p) == 3
        assert running(d) and (await health(d))[0] == 200

        clock.offset = 0.0  # the clock comes back
        await publisher(f"{p}/w1/b1/vitals", {"ts": time.time(), **NORMAL, "hr": 95})
        await wait_for(lambda: count(db, "observations") == 2, what="accepted again")
        await wait_for(
            lambda: [
                s
                for s in bed_states(heard)[-1:]
                if s["vitals"]["hr"]["value"] == 95 and s["crs_grade"] == 0
            ],
            what="the new reading in the published state",
        )
        assert rejected_rows(db, p) == 3
    assert running(d)


async def test_clock_set_back_after_running_ahead_keeps_grading(make_daemon, publisher, listen):
    clock = JumpingClock(3 * HOUR)  # the daemon's host clock runs three hours ahead
    d = await make_daemon(clock=clock)
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    t0 = time.time()  # the devices' clocks are right
    async with listen(f"{p}/w1/b1/state") as heard:
        await admit(publisher, p, t0 - 600)
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 - 5, **NORMAL})
        await wait_for(
            lambda: [s for s in bed_states(heard) if s["vitals"]["hr"]["status"] == "lost"],
            what="three hours old to the daemon: lost",
        )
        clock.offset = 0.0  # NTP sets the host clock right
        await publisher(f"{p}/w1/b1/vitals", {"ts": time.time(), **NORMAL, "hr": 95})
        await wait_for(lambda: count(db, "observations") == 2, what="stored")
        await wait_for(
            lambda: [
                s
                for s in bed_states(heard)[-1:]
                if s["vitals"]["hr"]["value"] == 95
                and s["vitals"]["hr"]["status"] == "live"
                and s["crs_grade"] == 0
            ],
            timeout=10,
            what="the bed graded again with the live reading",
        )


# -- SQLite busy: another process holds the write lock ------------------------------------

LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=10)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.rollback()
conn.close()
"""


async def test_write_lock_held_by_another_process_during_a_burst(make_daemon, publisher):
    d = await make_daemon(storage={"busy_timeout_s": 0.2})
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    acked = spy_acks(d)
    now = time.time()
    await admit(publisher, p, now - 4000)
    await wait_for(lambda: count(db, "admissions") == 1)
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCK_HOLDER,
        db,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"locked\n"
        n = 500
        await asyncio.gather(
            *(
                publisher(
                    f"{p}/w1/b1/vitals", {"ts": now - 1000 + i, "hr": 60 + i % 50, "spo2": 97}
                )
                for i in range(n)
            )
        )
        await wait_for(lambda: received(d) == n, what="the burst received")
        errors = store_errors(d)
        await wait_for(lambda: store_errors(d) >= errors + 1, what="a refused commit after")
        before = len(acked)
        await wait_for(lambda: store_errors(d) >= errors + 2, what="another refused retry")
        assert not d.pipeline.store_ok
        status, body = await health(d)
        assert status == 503 and body["problems"][0].startswith(
            "store: not writable (OperationalError: database is locked"
        )
        assert count(db, "observations") == 0 and len(acked) == before
    finally:
        holder.stdin.write(b"release\n")
        await holder.stdin.drain()
        await asyncio.wait_for(holder.wait(), 10)
    await wait_for(lambda: count(db, "observations") == n, what="all 500 stored")
    await wait_for(lambda: d.pipeline.store_ok)
    assert query(db, "SELECT count(DISTINCT ts) FROM observations") == [(n,)]
    assert rejected_rows(db, p) == 0
    assert d.metrics.registry.get_sample_value("crswatch_messages_duplicate_total") == 0
    assert len(acked) == before + n  # every one acknowledged once, after the release
    assert (await health(d))[0] == 200


async def test_a_lagging_broker_holds_the_states_not_the_alerts(
    make_daemon, publisher, listen, monkeypatch
):
    """While paho holds more bytes than STATE_BACKLOG_MAX (a flood's acknowledgements
    queued ahead of everything), each bed's latest state waits for the broker; the alert
    decision and the dashboard do not (an alert came 20 s late under a flood when the
    whole state pass waited). Once the broker keeps up, the latest state goes out."""
    import monitor.daemon

    d = await make_daemon()
    p = d.cfg.prefix
    t0 = time.time()
    async with listen(f"{p}/w1/b1/state") as heard:
        await admit(publisher, p, t0 - 600)
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 - 5, **NORMAL})
        await wait_for(lambda: bed_states(heard), what="the first state")
        monkeypatch.setattr(monitor.daemon, "STATE_BACKLOG_MAX", -1)  # the broker lags
        dashboard = d.hub.subscribe()  # what a dashboard's WebSocket is fed
        await publisher(f"{p}/w1/b1/vitals", {"ts": t0 - 1, "temp_c": 38.6})
        raised = await wait_for(
            lambda: [a for a in d.alerts.active() if a["kind"] == "crs"],
            what="the fever's alert raised while the broker lags",
        )
        assert raised[0]["message"].startswith("CRS grade 1")
        assert all(s["crs_grade"] == 0 for s in bed_states(heard))  # the state waits
        fed = [dashboard.queue.get_nowait() for _ in range(dashboard.queue.qsize())]
        assert [e["state"]["crs_grade"] for e in fed if e["type"] == "state"][-1] == 1
        assert any(e["type"] == "alert" for e in fed)  # the dashboard has both
        assert d.unsent_states == {f"{p}/w1/b1/state": d.unsent_states[f"{p}/w1/b1/state"]}
        monkeypatch.setattr(monitor.daemon, "STATE_BACKLOG_MAX", 8_000_000)  # it keeps up
        await wait_for(
            lambda: [s for s in bed_states(heard) if s["crs_grade"] == 1],
            what="the bed's latest state once the broker keeps up",
        )
        assert not d.unsent_states
