"""Scale-out by ward (docs/scale-out.md): two daemons on one broker, the same topic prefix,
each with its own client id, SQLite file and HTTP port, and disjoint `mqtt.wards`. Each
receives, stores and grades only its own wards; neither sees, so neither rejects, the
other's messages."""

from __future__ import annotations

import time

import aiohttp

from monitor.ingest.mqtt import subscriptions
from tests.conftest import daemon_config, wait_for
from tests.support.db import count, query

BEDS = ("b1", "b2", "b3")


def received(d) -> dict[str, float]:
    return {
        kind: d.metrics.registry.get_sample_value(
            "crswatch_messages_received_total", {"kind": kind}
        )
        or 0.0
        for kind in ("admit", "vitals", "care")
    }


async def test_two_daemons_split_the_hospital_by_ward(
    broker, tmp_path, make_daemon, publisher, listen
):
    prefix = "scaleout"

    def instance(name: str, wards: list[str]):
        return daemon_config(
            broker,
            tmp_path / name,
            mqtt={"topic_prefix": prefix, "client_id": f"crswatch-{prefix}-{name}", "wards": wards},
        )

    one = await make_daemon(instance("one", ["w1"]))
    two = await make_daemon(instance("two", ["w2"]))
    assert one.http_port != two.http_port
    assert one.cfg["storage.path"] != two.cfg["storage.path"]
    assert {t for t, _ in subscriptions(one.cfg)} & {t for t, _ in subscriptions(two.cfg)} == set()
    now = time.time()
    async with listen(f"{prefix}/rejected", f"{prefix}/+/+/state") as heard:
        for ward in ("w1", "w2", "w3"):  # w3: a ward no instance serves
            for i, bed in enumerate(BEDS):
                await publisher(
                    f"{prefix}/{ward}/{bed}/admit",
                    {"patient_id": f"P-{ward}-{bed}", "ts": now - 3600},
                )
                await publisher(
                    f"{prefix}/{ward}/{bed}/vitals",
                    [{"ts": now - 60 + j, "hr": 70 + i + j, "spo2": 97} for j in range(5)],
                )
                await publisher(
                    f"{prefix}/{ward}/{bed}/care",
                    {"ts": now - 30, "type": "medication", "drug": "paracetamol"},
                )
        for d in (one, two):
            db = d.cfg["storage.path"]
            await wait_for(
                lambda db=db: (
                    count(db, "observations") == 5 * len(BEDS)
                    and count(db, "care_events") == len(BEDS)
                ),
                what="the instance's own ward stored",
            )
        for d, ward in ((one, "w1"), (two, "w2")):
            db = d.cfg["storage.path"]
            assert query(db, "SELECT DISTINCT ward FROM admissions") == [(ward,)]
            assert query(db, "SELECT DISTINCT ward FROM observations") == [(ward,)]
            assert query(db, "SELECT DISTINCT ward FROM care_events") == [(ward,)]
            assert query(
                db, "SELECT bed, patient_id, count(*) FROM observations GROUP BY bed ORDER BY bed"
            ) == [(bed, f"P-{ward}-{bed}", 5) for bed in BEDS]
            # the other ward's messages never reached it: nothing rejected, nothing counted
            assert count(db, "rejections", "topic NOT LIKE '%/state'") == 0
            assert received(d) == {"admit": len(BEDS), "vitals": len(BEDS), "care": len(BEDS)}
            assert {rec.ward for rec in d.ward.records.values()} == {ward}
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{d.http_port}/healthz") as r:
                    assert r.status == 200
        # each bed's state is published (by its own instance), w3's by nobody
        await wait_for(
            lambda: (
                {(s["ward"], s["bed"]) for s in heard.json("/state")}
                == {(w, b) for w in ("w1", "w2") for b in BEDS}
            ),
            what="a state for every bed of w1 and w2",
        )
        # (amqtt 0.12 may hand a daemon a retained state on subscribe, which it rejects)
        assert [r for r in heard.json("/rejected") if not r["topic"].endswith("/state")] == []
