"""HL7 v2 over MLLP, as central stations push it: a maintained client (the `hl7`
package's MLLPClient, blocking, run in threads) against the daemon's listener; ACKs only
after commit, rejections answered and published, senders independent of each other."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sqlite3
import threading
import time
import urllib.request

import aiomqtt
import hl7
import pytest
from hl7.client import MLLPClient

from tests.conftest import wait_for
from tests.support.brokers import free_port
from tests.support.db import count, query
from tests.test_durability import daemon_online, start_daemon, write_config
from tests.test_ingest import admit


def stamp(ts: float) -> str:
    return time.strftime("%Y%m%d%H%M%S+0000", time.gmtime(ts))


def oru(
    control_id: str,
    ts: float,
    hr: int = 80,
    location: str = "w1^^b1",
    msg_type: str = "ORU^R01^ORU_R01",
    extra: tuple[str, ...] = (),
) -> str:
    """A GE CARESCAPE Gateway-shaped ORU^R01 (IHE PCD-01 numerics; GE B40 HL7 manual's
    example: ECG heart rate, SpO2 with its pulse rate, invasive pressure)."""
    t = stamp(ts)
    return "\r".join(
        [
            f"MSH|^~\\&|CARESCAPE^080019FFFE0B4020^EUI-64|GE|CRSWATCH|HOSP|{t}||{msg_type}"
            f"|{control_id}|P|2.6|||AL|NE||UNICODE UTF-8|||"
            "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
            "PID|||MRN0042^^^HOSP^MR||Doe^Jane",
            f"PV1||I|{location}",
            f"OBR|1|{control_id}^CARESCAPE|{control_id}^CARESCAPE"
            f"|182777000^monitoring of patient^SCT|||{t}",
            "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
            f"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.5.1.1|{hr}|264864^MDC_DIM_BEAT_PER_MIN^MDC"
            f"|||||R|||{t}",
            f"OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|96|262688^MDC_DIM_PERCENT^MDC|||||R|||{t}",
            f"OBX|4|NM|149522^MDC_BLD_PULS_RATE_INV^MDC|1.13.1.4|{hr + 1}"
            f"|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{t}",
            *extra,
        ]
    )


def send(port: int, *messages: str) -> list[hl7.Message]:
    """Each message over one connection, waiting for its ACK (blocking: run in a thread)."""
    acks = []
    with MLLPClient("127.0.0.1", port) as client:
        client.socket.settimeout(60)
        for m in messages:
            acks.append(parse_ack(client.send_message(m)))
    return acks


def parse_ack(raw: bytes) -> hl7.Message:
    if not raw:
        raise ConnectionError("connection closed without an ACK")
    return hl7.parse(raw.strip(b"\x0b\x1c\r").decode())


def msa(ack: hl7.Message) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, MSA-3 text)."""
    segment = ack.segment("MSA")
    text = ack.unescape(str(segment[3])) if len(segment) > 3 else ""
    return str(segment[1]), str(segment[2]), text


def errors(ack: hl7.Message) -> list[tuple[str, str]]:
    """(ERR-4 severity, ERR-8 text) of each ERR."""
    if not any(str(s[0]) == "ERR" for s in ack):
        return []
    return [(str(s[4]), ack.unescape(str(s[8]))) for s in ack.segments("ERR")]


async def mllp_daemon(make_daemon, **mllp):
    return await make_daemon(mllp={"enabled": True, "port": 0, **mllp})


async def test_oru_is_acked_aa_after_it_is_stored(make_daemon, publisher):
    d = await mllp_daemon(make_daemon)
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, now=now)
    await wait_for(lambda: count(db, "admissions") == 1, what="admitted")
    (ack,) = await asyncio.to_thread(send, d.mllp.port, oru("GE-1", now - 5, hr=112))
    assert msa(ack)[:2] == ("AA", "GE-1")
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK"
    # stored when the ACK arrived: no waiting here
    assert query(db, "SELECT hr, spo2 FROM observations") == [(112.0, 96.0)]


async def test_rejected_content_is_answered_ae_and_published(make_daemon, listen):
    d = await mllp_daemon(make_daemon)
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    async with listen(f"{p}/rejected") as rejected:
        (ack,) = await asyncio.to_thread(send, d.mllp.port, oru("GE-2", time.time()))
        code, control, text = msa(ack)
        assert (code, control) == ("AE", "GE-2")
        assert text == "no patient is admitted to this bed"
        assert errors(ack) == [("E", "no patient is admitted to this bed")]
        await wait_for(lambda: rejected.json(), what="published rejection")
    assert rejected.json()[0]["topic"] == f"{p}/w1/b1/hl7"
    assert count(db, "rejections") == 1


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            oru("A-1", 1.0, msg_type="ADT^A01^ADT_A01"),
            "MSH-9 'ADT^A01^ADT_A01': CRSWatch takes ORU^R01 only",
        ),
        (oru("A-2", 1.0, location=""), "PV1-3: no point of care (PV1-3.1) and bed (PV1-3.3)"),
        (oru("A-3", 1.0, location="7 WEST^^BED 3"), "map the location in mllp.locations"),
        ("PID|||x", "not an HL7 v2 message: the first segment is not MSH"),
    ],
)
async def test_unroutable_messages_are_answered_ar_and_stored(make_daemon, listen, message, reason):
    d = await mllp_daemon(make_daemon)
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    async with listen(f"{p}/rejected") as rejected:
        (ack,) = await asyncio.to_thread(send, d.mllp.port, message)
        assert msa(ack)[0] == "AR" and reason in msa(ack)[2]
        await wait_for(lambda: rejected.json(), what="published rejection")
    assert reason in rejected.json()[0]["reason"]
    assert rejected.json()[0]["topic"].startswith("mllp://127.0.0.1:")
    assert count(db, "rejections") == 1


async def test_location_table_and_skipped_values_are_said_in_the_ack(make_daemon, publisher):
    d = await mllp_daemon(make_daemon, locations=["7 WEST/BED 3=w2/b7"])
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    await admit(publisher, p, ward="w2", bed="b7", now=now)
    await wait_for(lambda: count(db, "admissions") == 1, what="admitted")
    demo = (
        f"OBX|5|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.3.1.1|120|266016^MDC_DIM_MMHG^MDC"
        f"||demo-data|||R|||{stamp(now - 5)}"
    )
    (ack,) = await asyncio.to_thread(
        send, d.mllp.port, oru("GE-3", now - 5, location="7 WEST^^BED 3", extra=(demo,))
    )
    assert msa(ack)[0] == "AA"
    assert errors(ack) == [("W", "OBX #5: sbp skipped: OBX-8 demo-data (not patient data)")]
    assert query(db, "SELECT hr, sbp FROM observations") == [(80.0, None)]


async def test_many_senders_at_once_and_a_stalled_one_blocks_nobody(make_daemon, publisher):
    d = await mllp_daemon(make_daemon)
    p, db = d.cfg.prefix, d.cfg["storage.path"]
    now = time.time()
    for bed in range(1, 6):
        await admit(publisher, p, bed=f"b{bed}", patient=f"P{bed}", now=now)
    await wait_for(lambda: count(db, "admissions") == 5, what="admitted")
    # a sender that opened a frame and went silent, and one that connected and sent nothing
    stalled = socket.create_connection(("127.0.0.1", d.mllp.port))
    stalled.sendall(b"\x0bMSH|^~\\&|DEAD|")
    idle = socket.create_connection(("127.0.0.1", d.mllp.port))
    try:
        batches = [
            [oru(f"B{bed}-{i}", now - 100 + i, location=f"w1^^b{bed}") for i in range(20)]
            for bed in range(1, 6)
        ]
        results = await asyncio.gather(
            *(asyncio.to_thread(send, d.mllp.port, *batch) for batch in batches)
        )
        assert [msa(a)[0] for acks in results for a in acks] == ["AA"] * 100
        assert count(db, "observations") == 100
    finally:
        stalled.close()
        idle.close()


async def test_an_oversized_frame_is_refused_and_the_connection_closed(make_daemon):
    d = await mllp_daemon(make_daemon)
    big = oru("BIG", time.time()) + "\rNTE|1||" + "x" * (d.cfg["ingest.max_message_bytes"] + 10)
    (ack,) = await asyncio.to_thread(send, d.mllp.port, big)
    assert msa(ack)[0] == "AR" and "over the limit" in msa(ack)[2]
    assert count(d.cfg["storage.path"], "rejections") == 1


def mllp_received(port: int) -> float:
    """HL7 messages the daemon has received (from its /metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    m = re.search(r'crswatch_messages_received_total\{kind="hl7"\} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def central_station(port: int, messages: list[str], acked: list[int], done: threading.Event):
    """A central station's HL7 sender: one message at a time, resent until it is ACKed
    AA, reconnecting when the connection drops (as PIC iX / CARESCAPE Gateway do)."""
    i = 0
    while i < len(messages) and not done.is_set():
        try:
            with MLLPClient("127.0.0.1", port) as client:
                client.socket.settimeout(60)
                while i < len(messages):
                    code = msa(parse_ack(client.send_message(messages[i])))[0]
                    if code != "AA":
                        raise AssertionError(f"message {i}: {code}")
                    acked.append(i)
                    i += 1
        except (OSError, ConnectionError):
            time.sleep(0.2)


async def test_sigkill_mid_stream_every_aa_is_stored_none_before_commit(broker, tmp_path):
    """Three central stations stream 150 ORU^R01 each over MLLP; the daemon (a real
    process) is killed with SIGKILL while each station waits for the ACK of a message
    received but not committed (the test holds the database lock, so commits wait)."""
    cfg, db = tmp_path / "config.toml", tmp_path / "crswatch.db"
    http_port, mllp_port = free_port(), free_port()
    write_config(cfg, broker, db, prefix="mk", client_id="crswatch-mllp-kill", http_port=http_port)
    with cfg.open("a") as f:
        f.write(f'[mllp]\nenabled = true\nhost = "127.0.0.1"\nport = {mllp_port}\n')
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    lock, done, n = None, threading.Event(), 150
    try:
        await daemon_online(broker, "mk")
        now = time.time()
        async with aiomqtt.Client(broker.host, broker.port, identifier="ehr-mllp") as c:
            for bed in (1, 2, 3):
                await c.publish(
                    f"mk/w1/b{bed}/admit", f'{{"patient_id": "P{bed}", "ts": {now - 3600}}}', qos=1
                )
        await wait_for(lambda: count(db, "admissions") == 3, what="admitted")
        acked: dict[int, list[int]] = {1: [], 2: [], 3: []}
        base = int(now) - 1000
        streams = {
            bed: [oru(f"S{bed}-{i}", base + i, location=f"w1^^b{bed}") for i in range(n)]
            for bed in (1, 2, 3)
        }
        senders = [
            asyncio.create_task(
                asyncio.to_thread(central_station, mllp_port, streams[b], acked[b], done)
            )
            for b in (1, 2, 3)
        ]
        await wait_for(lambda: count(db, "observations") >= 60, what="60 stored")
        lock = sqlite3.connect(db, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # commits now wait
        stored = lock.execute("SELECT count(*) FROM observations").fetchone()[0]
        # each station has sent one more message, received by the daemon, not committed
        await wait_for(lambda: mllp_received(http_port) >= stored + 3, what="3 in flight")
        await wait_for(lambda: sum(map(len, acked.values())) >= stored, what="ACKs read")
        assert sum(map(len, acked.values())) == stored, "an ACK went out before its commit"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        lock.rollback()
        lock.close()
        lock = None
        assert count(db, "observations") == stored  # the 3 in flight were never committed
        for bed in (1, 2, 3):  # and every message that got an AA is stored
            times = {
                ts for (ts,) in query(db, "SELECT ts FROM observations WHERE bed=?", f"b{bed}")
            }
            assert all(base + i in times for i in acked[bed])
        daemon = start_daemon(cfg, tmp_path / "daemon.log")  # the stations resend
        await asyncio.gather(*senders)
        assert [len(a) for a in acked.values()] == [n, n, n]
        assert count(db, "observations") == 3 * n
    finally:
        done.set()
        if lock is not None:
            lock.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)
