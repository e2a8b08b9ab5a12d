"""End-to-end benchmark against a real Mosquitto on this machine.

    .venv/bin/python benchmarks/e2e.py [--beds 100,1000,5000] [--messages 50000]
                                       [--seconds 20] [--storm 1000] [--flood 10000]
                                       [--shards 1] [--no-front] [--mix all|monitor]
                                       [--out benchmarks/results.json]

For each ward size N it measures:
  drain     M queued QoS 1 vitals messages (one time point each) drained from a
            persistent session by: `mosquitto_sub` alone, a bare aiomqtt loop that only
            counts, and the CRSWatch daemon (decode, validate, store, grade, acknowledge),
            timed until every message is stored and every bed graded (daemon_rate; until
            stored only: daemon_stored_rate). Our rate is reported as a ratio of both.
  latency   N beds each sending one reading per second for S seconds: publish -> retained
            state topic (p50, p99); midway, 20 more beds deteriorate (their sick readings
            back-dated so that the 180 s persistence is already covered, as in the storm):
            publish -> tier-3 alert on MQTT and on the dashboard's WebSocket.
  cost      the daemon's CPU (share of one core, and per reading) and resident memory,
            after the drain at N beds and (--baseline-beds) in a second daemon after the
            same drain at a few beds: the marginal KB per bed.
  storm     (--storm N, at 1,000 beds or the one size given) N more beds raise a tier-3
            NEWS2 alert at once, then all recover: every raise and resolution counted on
            MQTT and on the dashboard's WebSocket (missing, duplicates, lateness).
The daemon runs as its own process (`main.py run`), as in production; with --shards N,
N daemons split the hospital by ward (docs/scale-out.md) and are measured as one, with
the hospital's one dashboard (`main.py hospital --front-only`) before them: its WebSocket
is the one listened to, and its CPU counts (--no-front: each daemon's dashboard). The
1 Hz load and the MQTT listener run in processes of their own (see `latency`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import orjson
import paho.mqtt.client as paho
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from monitor.ingest.validate import parse_ts  # noqa: E402
from tests.support.brokers import TestBroker, free_port  # noqa: E402

PREFIX = "bench"
STORM_HOLD_S = 5.0  # alerts.resolve_hold_s of the benchmark's daemon (the storm resolves)
DETERIORATING = 20  # beds that deteriorate in the 1 Hz row (each run its own ward)
SICK = b'"hr":140,"spo2":85,"rr":30,"sbp":85,"temp_c":37.0,"acvpu":"A"'  # NEWS2 12, no fever
WELL = b'"hr":72,"spo2":97,"rr":15,"sbp":120,"temp_c":37.0,"acvpu":"A"'  # NEWS2 0


def publish_many(port: int, messages: list[tuple[str, bytes]], client_id: str) -> float:
    """Publish every message at QoS 1 as fast as the broker acknowledges; seconds taken."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    # paho's message ids are 16 bits: more than 65,535 unacknowledged at once collide
    # (ERR_QUEUE_SIZE), so at most 50,000 are handed over before the broker has them.
    for start in range(0, len(messages), 50_000):
        infos = [c.publish(t, p, qos=1) for t, p in messages[start : start + 50_000]]
        for info in infos:
            info.wait_for_publish(60)
    elapsed = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return elapsed


def vitals_messages(beds: int, m: int, t0: float) -> list[tuple[str, bytes]]:
    out = []
    for i in range(m):
        bed = i % beds
        ts = t0 + i // beds  # one time point per bed per second of data
        out.append(
            (
                f"{PREFIX}/w{bed // 100}/b{bed}/vitals",
                b'{"ts":%.1f,"hr":%d,"spo2":97,"rr":15,"sbp":120,"temp_c":37.0,'
                b'"acvpu":"A"}' % (ts, 60 + i % 40),
            )
        )
    return out


def make_session(port: int, client_id: str, topic: str) -> None:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(topic, qos=1)[1]
    time.sleep(0.3)
    c.loop_stop()
    c.disconnect()


def drain_mosquitto_sub(port: int, m: int, messages) -> float:
    make_session(port, "bench-sub", f"{PREFIX}/#")
    publish_many(port, messages, "bench-pub-1")
    t0 = time.perf_counter()
    subprocess.run(
        [
            "mosquitto_sub",
            "-p",
            str(port),
            "-c",
            "-i",
            "bench-sub",
            "-q",
            "1",
            "-t",
            f"{PREFIX}/#",
            "-C",
            str(m),
        ],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return m / (time.perf_counter() - t0)


async def _aiomqtt_count(port: int, m: int) -> float:
    n = 0
    t0 = time.perf_counter()
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-aio", clean_session=False) as c:
        async for _ in c.messages:
            n += 1
            if n >= m:
                break
    return m / (time.perf_counter() - t0)


def drain_aiomqtt(port: int, m: int, messages) -> float:
    make_session(port, "bench-aio", f"{PREFIX}/#")
    publish_many(port, messages, "bench-pub-2")
    return asyncio.run(_aiomqtt_count(port, m))


class Daemon:
    def __init__(
        self,
        workdir: Path,
        port: int,
        beds: int,
        protocol: str = "3.1.1",
        client_id: str = "bench-daemon",
        extra: str = "",
        ingest: str = "",
        wards: list[str] | None = None,
    ):
        workdir.mkdir(exist_ok=True)
        self.workdir = workdir
        self.db = workdir / "bench.db"
        self.http = free_port()
        self.cfg = workdir / "bench.toml"
        self.cfg.write_text(f"""[mqtt]
port = {port}
topic_prefix = "{PREFIX}"
client_id = "{client_id}"
receive_maximum = 1000
protocol = "{protocol}"
{"" if wards is None else "wards = " + orjson.dumps(wards).decode()}
[storage]
path = "{self.db}"
[http]
port = {self.http}
trusted_proxies = ["127.0.0.1"]  # a hospital's front (Hospital) logs in for its users
[alerts]
# the storm row waits for every alert to resolve: a short hold (300 s by default)
resolve_hold_s = {STORM_HOLD_S}
[ingest]
# every bed is admitted at once (commissioning the whole hospital): above the default
# burst of 2,000 admissions the unserved-bed rate limit would reject the rest
unserved_burst = {float(max(2000, 2 * beds + 2000))}
{ingest}
{extra}""")
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self, connected: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "run", "--config", str(self.cfg)],
            cwd=ROOT,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        if connected:
            self.wait(lambda: self.metric("crswatch_broker_connected") == 1.0, 60)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # what the measurements read of one daemon or of a hospital's (Hospital)
    @property
    def daemons(self) -> list[Daemon]:
        return [self]

    def dashboards(self) -> list[int]:
        """The HTTP port of each dashboard a user watches: this daemon's."""
        return [self.http]

    def front_procs(self) -> list[psutil.Process]:
        return []

    def procs(self) -> list[psutil.Process]:
        return [psutil.Process(self.proc.pid)]

    def metric(self, name: str) -> float | None:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=2) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(name + " ") or line.startswith(name + "{"):
                        return float(line.rsplit(" ", 1)[1])
        except OSError:
            return None
        return None

    @staticmethod
    async def await_(cond, timeout: float = 120) -> None:
        """`wait` that lets the event loop run (listeners keep receiving meanwhile)."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(cond):
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark condition not reached")
            await asyncio.sleep(0.05)

    @staticmethod
    def wait(cond, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark condition not reached")
            time.sleep(0.05)


class Hospital:
    """One hospital's daemons split by ward (docs/scale-out.md), each its own process,
    MQTT session, SQLite file and dashboard; measured as one: counters summed, CPU and
    memory of all, alerts heard on every dashboard."""

    def __init__(
        self, workdir: Path, port: int, beds: int, shards: int, storm_beds: int, front: bool
    ):
        wards = [f"w{i}" for i in range(-(-beds // 100))] + ["d0", "d1", "wf"]
        wards += [f"s{i}" for i in range(-(-storm_beds // 100))]
        self.workdir = workdir
        self.daemons = [
            Daemon(
                workdir / f"shard{k}",
                port,
                beds,
                client_id=f"bench-daemon-{k}",
                wards=[w for w in wards if shard_of(w, shards) == k],
            )
            for k in range(shards)
        ]

        # the hospital's one dashboard (hospital/front.py) before the daemons, as users see it
        self.front_http = free_port()
        self.front_cfg = workdir / "hospital.toml"
        self.front_cfg.write_text(
            f"[hospital]\nport = {self.front_http}\ndaemons = "
            + orjson.dumps([str(d.cfg) for d in self.daemons]).decode()
            + "\n"
        )
        self.front: subprocess.Popen | None = None
        self.with_front = front

    def start(self, connected: bool = True) -> None:
        for d in self.daemons:
            d.start(connected=False)
        if self.with_front:
            self.front = subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "hospital", "--front-only"]
                + ["--config", str(self.front_cfg)],
                cwd=ROOT,
                stdout=open(self.workdir / "front.log", "ab"),
                stderr=subprocess.STDOUT,
            )
        if connected:
            self.wait(lambda: self.metric("crswatch_broker_connected") == len(self.daemons), 60)

    def stop(self) -> None:
        procs = [d.proc for d in self.daemons] + ([self.front] if self.front else [])
        self.front = None
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)

    def dashboards(self) -> list[int]:
        """One dashboard for the whole hospital: the front's (or, without it, each
        daemon's)."""
        return [self.front_http] if self.with_front else [d.http for d in self.daemons]

    def running(self) -> bool:
        return any(d.running() for d in self.daemons)

    def metric(self, name: str) -> float | None:
        values = [d.metric(name) for d in self.daemons]
        return None if any(v is None for v in values) else sum(values)  # type: ignore[misc]

    def procs(self) -> list[psutil.Process]:
        return [p for d in self.daemons for p in d.procs()] + self.front_procs()

    def front_procs(self) -> list[psutil.Process]:
        return [psutil.Process(self.front.pid)] if self.front is not None else []

    await_ = staticmethod(Daemon.await_)
    wait = staticmethod(Daemon.wait)


def shard_of(ward: str, shards: int) -> int:
    """Which of `shards` daemons serves a ward: w{i} and s{i} by i; d0, wf the first."""
    digits = "".join(c for c in ward if c.isdigit())
    return int(digits or 0) % shards


def _with_children(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The daemons and any process they started (a daemon that spreads its work over
    processes is charged for all of them)."""
    return [q for proc in procs for q in [proc, *proc.children(recursive=True)]]


def cpu_s(procs: list[psutil.Process]) -> float:
    """CPU seconds of the daemons and their processes."""
    total = 0.0
    for p in _with_children(procs):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def rss(procs: list[psutil.Process]) -> int:
    """Resident memory of the daemons and their processes."""
    total = 0
    for p in _with_children(procs):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def admit_all(port: int, beds: int, t0: float) -> None:
    publish_many(
        port,
        [
            (
                f"{PREFIX}/w{b // 100}/b{b}/admit",
                b'{"patient_id":"B%d","ts":%.1f,"infusion_ts":%.1f}' % (b, t0 - 3600, t0 - 86400),
            )
            for b in range(beds)
        ],
        "bench-ehr",
    )


def drain_daemon(daemon: Daemon | Hospital, port: int, beds: int, m: int, t0: float) -> dict:
    """Admit the beds, stop the daemon, queue M readings, start it: time to store all."""
    daemon.start()
    admit_all(port, beds, t0)
    daemon.wait(lambda: (daemon.metric("crswatch_beds_admitted") or 0) >= beds, 120)
    daemon.stop()
    publish_many(port, vitals_messages(beds, m, t0), "bench-pub-3")
    # timed from the process's start (its start-up included): with a backlog the broker
    # sends the queued readings right behind its CONNACK, so much is stored within the
    # moments of start-up that a wait for "connected" would leave out
    start = time.perf_counter()
    daemon.start(connected=False)
    procs = daemon.procs()
    cpu0 = cpu_s(procs)
    daemon.wait(lambda: (daemon.metric("crswatch_observations_stored_total") or 0) >= m, 600)
    stored = time.perf_counter() - start
    # ... and graded: every bed's state holds its last reading (no bed left to grade)
    daemon.wait(lambda: daemon.metric("crswatch_grading_backlog") == 0, 600)
    elapsed = time.perf_counter() - start
    cpu1 = cpu_s(procs)
    on_disk = sum(
        p.stat().st_size
        for d in daemon.daemons
        for p in d.db.parent.glob(d.db.name + "*")
        if p.is_file()
    )
    return {
        "db_bytes": on_disk,
        "rate": m / elapsed,
        "stored_rate": m / stored,
        "seconds": elapsed,
        "cpu_share": (cpu1 - cpu0) / elapsed,
    }


FLOODER = """
import signal, subprocess, sys, time
port, rate, seconds, topic = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
# mosquitto_pub (C) publishes QoS 1 at some 30,000 msg/s here; a Python client cannot
# flood at 10,000/s beside the daemon on two cores. A burst of rate/10 every 0.1 s.
sent, running, k = 0, [], 0
def report(*_):  # messages per second the broker accepted from the flooder
    print(sent / (time.time() - start), flush=True)
    for proc in running:
        proc.kill()
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
start = time.time()
burst = max(1, int(rate / 10))
while time.time() - start < seconds:
    k += 1
    for proc in [p for p in running if p.poll() is not None]:
        running.remove(proc)
        sent += burst if proc.returncode == 0 else 0
    if len(running) >= 3:  # the broker lags: skip this burst (the rate shows it), never
        time.sleep(max(0.0, start + k * 0.1 - time.time()))  # pile up publishers
        continue
    running.append(subprocess.Popen(
        ["mosquitto_pub", "-p", str(port), "-i", f"bench-flooder-{k}", "-q", "1", "-t", topic,
         "-m", '{"ts":%.3f,"hr":80}' % time.time(), "--repeat", str(burst)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # not our stdout pipe
    time.sleep(max(0.0, start + k * 0.1 - time.time()))
for proc in running:
    proc.wait()
    sent += burst if proc.returncode == 0 else 0
report()
"""


async def ws_events(http_port: int, token: str, ready: asyncio.Event):
    """(receipt time, event) of the dashboard's live feed, as a browser gets it."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        # max_msg_size 0: the first message is a snapshot of every bed (MBs at 1,000 beds)
        async with s.ws_connect(
            f"http://127.0.0.1:{http_port}/ws", headers=headers, max_msg_size=0
        ) as ws:
            ready.set()
            async for m in ws:
                now = time.time()
                if '"type":"state' in m.data[:40]:
                    continue  # bed states ("state", "states"): not what is measured
                yield now, orjson.loads(m.data)


async def ws_alerts(
    http_port: int, token: str, sick: set[str], heard: dict[str, float], ready: asyncio.Event
) -> None:
    """The dashboard's live feed: when each sick bed's tier-3 NEWS2 raise arrived."""
    async for now, ev in ws_events(http_port, token, ready):
        a = ev.get("alert") or {}
        if (
            ev.get("type") == "alert"
            and ev.get("event") == "raised"
            and a.get("kind") == "news2"
            and a.get("tier") == 3
            and (key := f"{a.get('ward')}/{a.get('bed')}") in sick
        ):
            heard.setdefault(key, now)


async def login(http_port: int) -> str:
    import aiohttp

    deadline = time.monotonic() + 60  # a hospital's front may still be starting
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.post(
                    f"http://127.0.0.1:{http_port}/api/login",
                    json={"username": "bench", "password": "queue-drain-77"},
                ) as r:
                    return (await r.json())["token"]
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


LOAD = """
# The bedside devices, as cheap as they can be on the daemon's machine: MQTT 3.1.1 QoS 1
# PUBLISH packets built here and written to one socket 50 at a time, PUBACKs read and
# dropped by a thread (paho spent ~0.6 of a core on 5,000 a second: CPU the daemons lost).
import json, socket, struct, sys, threading, time
port, beds, seconds, prefix = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
sick, SICK, mix = sys.argv[5].split(","), sys.argv[6].encode(), sys.argv[7]
def varint(n):
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)
conn = socket.create_connection(("127.0.0.1", port))
cid = b"bench-live"
# CONNECT: MQTT 3.1.1, a clean session, no keepalive
body = b"\\x00\\x04MQTT\\x04\\x02\\x00\\x00" + struct.pack("!H", len(cid)) + cid
conn.sendall(b"\\x10" + varint(len(body)) + body)
assert conn.recv(4)[:2] == b"\\x20\\x02", "no CONNACK"
acks = [0]
def drain():
    while True:
        data = conn.recv(65536)
        if not data:
            return
        acks[0] += len(data)  # PUBACKs, 4 bytes each
threading.Thread(target=drain, daemon=True).start()
mid = [0]
def packet(topic, payload):
    mid[0] = mid[0] % 65535 + 1
    t = topic.encode()
    rest = struct.pack("!H", len(t)) + t + struct.pack("!H", mid[0]) + payload
    return b"\\x32" + varint(len(rest)) + rest
sent = {}
def deteriorate():
    out = []
    for key in sick:
        ts = time.time()
        sent[key] = ts
        out.append(packet(f"{prefix}/{key}/vitals", b'{"ts":%.3f,%s}' % (ts, SICK)))
    conn.sendall(b"".join(out))
start = time.time()
end, tick = start + seconds, 0
while time.time() < end:
    second = time.time()
    if tick == max(2, int(seconds) // 2):  # midway through the load
        deteriorate()
    out = []
    for b in range(beds):
        ts = time.time()
        if mix == "all":  # every vital every second: the slowest to grade
            body = b'{"ts":%.3f,"hr":%d,"spo2":97,"rr":15,"sbp":120,"temp_c":37.0,"acvpu":"A"}'
        else:  # a bedside monitor: HR, SpO2, RR each second; the cuff every 15 minutes,
            # temperature and ACVPU hourly, each bed at its own moment
            slow = b""
            if (tick + b) % 900 == 0:
                slow += b',"sbp":120'
            if (tick + b) % 3600 == 0:
                slow += b',"temp_c":37.0,"acvpu":"A"'
            body = b'{"ts":%.3f,"hr":%d,"spo2":97,"rr":15' + slow + b"}"
        out.append(packet(f"{prefix}/w{b // 100}/b{b}/vitals", body % (ts, 70 + tick % 5)))
        if b % 50 == 49 or b == beds - 1:
            conn.sendall(b"".join(out))
            out = []
            time.sleep(max(0.0, second + (b + 1) / beds - time.time()))
    tick += 1
    time.sleep(max(0.0, second + 1 - time.time()))
wall = time.time() - start
if not sent:  # a run too short to reach midway: after it
    deteriorate()
time.sleep(1.0)
conn.sendall(b"\\xe0\\x00")  # DISCONNECT
print(json.dumps({"sent": sent, "start": start, "wall": wall, "acked": acks[0] // 4}))
"""


async def latency(
    daemon: Daemon | Hospital,
    port: int,
    beds: int,
    seconds: float,
    flood: float = 0.0,
    sick_ward: str = "d0",
    mix: str = "all",
) -> dict:
    """Every bed one reading per second; publish -> state. Midway, under that load,
    DETERIORATING more beds (ward `sick_ward`, one per run: an alert raised once stays
    active) turn sick: publish -> tier-3 alert on MQTT and on the dashboard's WebSocket.
    Like the storm's beds, each was admitted with a well reading 600 s before and a sick
    one 181 s before the deterioration, so that the persistence rule (180 s, PERSIST_S)
    believes the one sick reading of the deterioration: its alert is raised at once, as
    a bed sick for three minutes raises it. With `flood`, one more device sends that
    many messages per second all along.

    The load (a Python process of its own, LOAD) and the MQTT listener (`mosquitto_sub`,
    which stamps each message as it arrives) run outside this process: at 5,000 beds a
    Python publisher and subscriber sharing one process fell seconds behind themselves,
    and the benchmark measured its own lag. Only the WebSocket is read here."""
    procs = daemon.procs()
    t_admit = time.time()
    sick = [f"{sick_ward}/b{b}" for b in range(DETERIORATING)]
    admitted0 = daemon.metric("crswatch_beds_admitted") or 0
    publish_many(
        port,
        [
            (
                f"{PREFIX}/{key}/admit",
                b'{"patient_id":"%s","ts":%.1f,"infusion_ts":%.1f}'
                % (key.replace("/", "-").encode(), t_admit - 3600, t_admit - 86400),
            )
            for key in sick
        ]
        # well long before, sick 181 s before now: one more sick reading is persisted
        + [(f"{PREFIX}/{key}/vitals", b'{"ts":%.1f,%s}' % (t_admit - 600, WELL)) for key in sick]
        + [(f"{PREFIX}/{key}/vitals", b'{"ts":%.1f,%s}' % (t_admit - 181, SICK)) for key in sick],
        f"bench-ehr-{sick_ward}",
    )
    await daemon.await_(
        lambda: (daemon.metric("crswatch_beds_admitted") or 0) >= admitted0 + len(sick)
    )
    await daemon.await_(lambda: daemon.metric("crswatch_grading_backlog") == 0)
    ws_heard: dict[str, float] = {}  # sick bed -> when its tier-3 raise came on the WebSocket
    ws_tasks = []
    for http in daemon.dashboards():  # the dashboard users watch (a hospital's front)
        ws_ready = asyncio.Event()
        ws_tasks.append(
            asyncio.create_task(ws_alerts(http, await login(http), set(sick), ws_heard, ws_ready))
        )
        await ws_ready.wait()
    flooder = None
    if flood:
        publish_many(
            port,
            [
                (
                    f"{PREFIX}/wf/flood/admit",
                    b'{"patient_id":"FLOOD","ts":%.1f}' % (time.time() - 60),
                )
            ],
            "bench-ehr-2",
        )
        flooder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                FLOODER,
                str(port),
                str(flood),
                str(seconds + 10),
                f"{PREFIX}/wf/flood/vitals",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
    heard_file = daemon.workdir / f"heard-{sick_ward}.txt"
    with open(heard_file, "wb") as out:
        # %U: the arrival time (ns); -R: not the retained states of before
        listener = subprocess.Popen(
            ["mosquitto_sub", "-p", str(port), "-q", "1", "-R", "-F", "%U %t %p"]
            + ["-t", f"{PREFIX}/+/+/state", "-t", f"{PREFIX}/+/alerts"],
            stdout=out,
        )
    await asyncio.sleep(1.0)  # subscribed
    cpu0, front0 = cpu_s(procs), cpu_s(daemon.front_procs())
    load = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOAD,
        str(port),
        str(beds),
        str(seconds),
        PREFIX,
        ",".join(sick),
        SICK.decode(),
        mix,
        stdout=asyncio.subprocess.PIPE,
    )
    out_bytes, _ = await load.communicate()
    cpu1, front1 = cpu_s(procs), cpu_s(daemon.front_procs())
    ran = orjson.loads(out_bytes)
    sent, start, wall = ran["sent"], ran["start"], ran["wall"]
    deadline = time.time() + 30
    while len(ws_heard) < len(sick) and time.time() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # what is on its way to mosquitto_sub
    listener.terminate()
    listener.wait(10)
    for t in ws_tasks:
        t.cancel()
    flood_rate = None
    if flooder is not None:
        flooder.terminate()
        out_text, _ = flooder.communicate(timeout=30)
        flood_rate = round(float(out_text.strip() or 0))
    state_lat: list[float] = []
    alert_heard: dict[str, float] = {}
    measure_from, measure_to = start + 2.0, start + wall  # after a warm-up
    with open(heard_file, "rb") as f:
        for line in f:
            arrived, topic, payload = line.split(b" ", 2)
            body = orjson.loads(payload)
            if topic.endswith(b"/state"):
                hr = (body.get("vitals") or {}).get("hr") or {}
                ts = hr.get("ts")
                if ts:
                    t = parse_ts(ts)
                    if measure_from <= t <= measure_to:
                        state_lat.append(float(arrived) - t)
            elif (
                body.get("kind") == "news2"
                and body.get("event") == "raised"
                and body.get("tier") == 3
                and (key := f"{body.get('ward')}/{body.get('bed')}") in sent
            ):
                alert_heard.setdefault(key, float(arrived))
    heard_file.unlink()
    alert_lat = [alert_heard[k] - t for k, t in sent.items() if k in alert_heard]
    ws_lat = [ws_heard[k] - t for k, t in sent.items() if k in ws_heard]

    def pct(xs, q):
        return round(statistics.quantiles(xs, n=100)[q - 1] * 1000, 1) if len(xs) > 2 else None

    return {
        "state_p50_ms": pct(state_lat, 50),
        "state_p99_ms": pct(state_lat, 99),
        "state_samples": len(state_lat),
        "alert_p50_ms": pct(alert_lat, 50),
        "alert_p99_ms": pct(alert_lat, 99),
        "alerts_missing": len(sent) - len(alert_lat),
        "ws_alert_p50_ms": pct(ws_lat, 50),
        "ws_alert_p99_ms": pct(ws_lat, 99),
        "ws_alerts_missing": len(sent) - len(ws_lat),
        "flood_rate": flood_rate,
        "cpu_share_at_1hz": (cpu1 - cpu0) / wall,
        "front_cpu_share_at_1hz": round((front1 - front0) / wall, 3),  # included above
        "rss_mb": rss(procs) / 2**20,
    }


async def storm(daemon: Daemon | Hospital, port: int, beds: int) -> dict:
    """The alert storm: `beds` more beds (wards s0, s1, ...) all turn to NEWS2 12 at once
    (tier 3), then all recover at once and their alerts resolve after the hold. Each alert
    raised and resolved is counted on MQTT ({p}/+/alerts) and on the dashboard's WebSocket;
    lateness: from the publish of the reading that makes it (plus the hold, to resolve) to
    its arrival. Meanwhile the storm's readings must be stored (ingest not blocked)."""

    t_admit = time.time()
    stored0 = daemon.metric("crswatch_observations_stored_total") or 0
    admitted0 = daemon.metric("crswatch_beds_admitted") or 0
    names = [(f"s{b // 100}", f"b{b}") for b in range(beds)]
    publish_many(
        port,
        [
            (
                f"{PREFIX}/{w}/{b}/admit",
                b'{"patient_id":"S%s","ts":%.1f,"infusion_ts":%.1f}'
                % (b.encode(), t_admit - 3600, t_admit - 86400),
            )
            for w, b in names
        ]
        # a well reading long before: the storm's two sick readings alone are what persisted
        + [
            (f"{PREFIX}/{w}/{b}/vitals", b'{"ts":%.1f,%s}' % (t_admit - 600, WELL))
            for w, b in names
        ],
        "bench-storm-ehr",
    )
    await daemon.await_(lambda: (daemon.metric("crswatch_beds_admitted") or 0) >= admitted0 + beds)
    await daemon.await_(lambda: daemon.metric("crswatch_grading_backlog") == 0)
    got: dict[str, dict[str, list[float]]] = {
        ch: {"raised": [], "resolved": []} for ch in ("mqtt", "ws")
    }
    seen: dict[tuple[str, str, str], int] = {}  # (channel, event, bed) -> times seen
    sent: dict[str, dict[str, float]] = {"raised": {}, "resolved": {}}

    def note(channel: str, body: dict, now: float) -> None:
        ev, bed = body.get("event"), f"{body.get('ward')}/{body.get('bed')}"
        if body.get("tier") != 3 or ev not in sent or bed not in sent[ev]:
            return
        key = (channel, ev, bed)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 1:
            got[channel][ev].append(now - sent[ev][bed])

    async def listen_mqtt(ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.subscribe(f"{PREFIX}/+/alerts", qos=1)
            ready.set()
            async for msg in c.messages:
                note("mqtt", orjson.loads(msg.payload), time.time())

    async def listen_ws(http: int, ready: asyncio.Event) -> None:
        token = await login(http)
        async for now, ev in ws_events(http, token, ready):
            if ev.get("type") == "alert":
                note("ws", {**(ev.get("alert") or {}), "event": ev.get("event")}, now)

    readies = [asyncio.Event() for _ in range(1 + len(daemon.dashboards()))]
    tasks = [asyncio.create_task(listen_mqtt(readies[0]))] + [
        asyncio.create_task(listen_ws(http, r))
        for http, r in zip(daemon.dashboards(), readies[1:], strict=True)
    ]
    for r in readies:
        await r.wait()
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-storm")
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()

    def burst(body: bytes, ts: float, event: str | None, extra: float = 0.0) -> None:
        for w, b in names:
            now = time.time()
            if event:
                sent[event][f"{w}/{b}"] = now + extra
            pub.publish(f"{PREFIX}/{w}/{b}/vitals", b'{"ts":%.3f,%s}' % (ts or now, body), qos=1)

    t_storm = time.time()
    await asyncio.to_thread(
        burst, SICK, t_storm - 181, None
    )  # sick for over 180 s: it persisted (not an artefact)
    await asyncio.to_thread(burst, SICK, 0, "raised")
    phase_sent = time.time() - t_storm
    await daemon.await_(
        lambda: (daemon.metric("crswatch_observations_stored_total") or 0) >= stored0 + 3 * beds
    )
    stored_s = time.time() - t_storm
    deadline = time.time() + 60
    while time.time() < deadline and (
        len(got["mqtt"]["raised"]) < beds or len(got["ws"]["raised"]) < beds
    ):
        await asyncio.sleep(0.1)
    raised_s = time.time() - t_storm
    t_well = time.time()
    await asyncio.to_thread(burst, WELL, 0, "resolved", STORM_HOLD_S)
    deadline = time.time() + STORM_HOLD_S + 60
    while time.time() < deadline and (
        len(got["mqtt"]["resolved"]) < beds or len(got["ws"]["resolved"]) < beds
    ):
        await asyncio.sleep(0.1)
    resolved_s = time.time() - t_well
    pub.loop_stop()
    for t in tasks:
        t.cancel()

    def pct(xs, q):
        return round(statistics.quantiles(xs, n=100)[q - 1] * 1000, 1) if len(xs) > 2 else None

    out: dict = {
        "storm_beds": beds,
        "storm_publish_s": round(phase_sent, 2),
        "storm_all_stored_s": round(stored_s, 2),
        "storm_all_raised_s": round(raised_s, 2),
        "storm_all_resolved_s_after_hold": round(resolved_s - STORM_HOLD_S, 2),
        "storm_duplicates": sum(n - 1 for n in seen.values()),
    }
    for ch in ("mqtt", "ws"):
        for ev in ("raised", "resolved"):
            xs = got[ch][ev]
            out[f"storm_{ch}_{ev}_missing"] = beds - len(xs)
            out[f"storm_{ch}_{ev}_p50_ms"] = pct(xs, 50)
            out[f"storm_{ch}_{ev}_p99_ms"] = pct(xs, 99)
            out[f"storm_{ch}_{ev}_max_ms"] = round(max(xs) * 1000, 1) if xs else None
            out[f"storm_{ch}_{ev}_late_over_1s"] = sum(1 for x in xs if x > 1.0)
    return out


def baseline_rss(work: Path, port: int, beds: int, m: int) -> int:
    """Resident memory of a second daemon (its own database and session) after the same
    drain of M readings as the main run's, spread over `beds` beds only: what grows with
    the readings drained (SQLite's caches, the allocator's high-water mark) is then the
    same in both, so the difference is the beds'. RSS varies from run to run (two runs
    at 200 beds: 155 and 169 MB): take a wide gap between the sizes.
    A bed's streams are bounded (its newest 64 readings), so its more readings add
    nothing to it; its rate limit is raised to take them all (no flood rows)."""
    work.mkdir()
    daemon = Daemon(
        work,
        port,
        beds,
        client_id="bench-daemon-baseline",
        ingest=f"burst_per_bed = {m // beds + 100}\n",
    )
    try:
        drain_daemon(daemon, port, beds, m, time.time() - m // beds - 60)
        return rss(daemon.procs())
    finally:
        if daemon.running():
            daemon.stop()


def run_size(
    beds: int,
    m: int,
    seconds: float,
    flood: float = 0.0,
    storm_beds: int = 0,
    baseline_beds: int = 0,
    shards: int = 1,
    mix: str = "all",
    front: bool = True,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="crswatch-bench-") as tmp:
        work = Path(tmp)
        # No broker persistence: the tests' broker saves its database every second, and
        # under the flood that file grows to tens of MB and the broker spends its time
        # writing it (it stopped answering at all in one run). Sessions stay in memory.
        broker = TestBroker(work / "broker", kind="mosquitto", persistent=False).start()
        try:
            t0 = time.time() - m // beds - 60
            msgs = vitals_messages(beds, m, t0)
            sub_rate = drain_mosquitto_sub(broker.port, m, msgs)
            aio_rate = drain_aiomqtt(broker.port, m, msgs)
            daemon: Daemon | Hospital = (
                Daemon(work, broker.port, beds)
                if shards == 1
                else Hospital(work, broker.port, beds, shards, storm_beds, front)
            )
            from monitor.store.accounts import add_user

            for d in daemon.daemons:
                add_user(str(d.db), "bench", "nurse", "queue-drain-77")
            drained = drain_daemon(daemon, broker.port, beds, m, t0)
            rss1 = rss(daemon.procs())
            live = asyncio.run(latency(daemon, broker.port, beds, seconds, mix=mix))
            flooded = (
                asyncio.run(latency(daemon, broker.port, beds, seconds, flood, "d1", mix))
                if flood
                else {}
            )
            stormed = asyncio.run(storm(daemon, broker.port, storm_beds)) if storm_beds else {}
            daemon.stop()
            memory: dict = {}
            if 0 < baseline_beds < beds and shards == 1:
                # after the main daemon stopped: the same work at a few beds, for the
                # marginal memory of a bed (the process's own ~190 MB cancels out)
                rss0 = baseline_rss(work / "baseline", broker.port, baseline_beds, m)
                memory = {
                    "baseline_beds": baseline_beds,
                    "rss_baseline_after_drain_mb": round(rss0 / 2**20, 1),
                    "kb_per_bed_over_baseline": round(
                        (rss1 - rss0) / 1024 / (beds - baseline_beds), 1
                    ),
                }
        finally:
            broker.stop()
    return {
        "beds": beds,
        "shards": shards,
        "front": shards > 1 and front,
        "mix": mix,
        "messages": m,
        "mosquitto_sub_rate": round(sub_rate),
        "aiomqtt_count_rate": round(aio_rate),
        "daemon_rate": round(drained["rate"]),
        "daemon_stored_rate": round(drained["stored_rate"]),
        "ratio_to_aiomqtt": round(drained["rate"] / aio_rate, 2),
        "ratio_to_mosquitto_sub": round(drained["rate"] / sub_rate, 3),
        "daemon_cpu_share_draining": round(drained["cpu_share"], 2),
        "rss_after_drain_mb": round(rss1 / 2**20, 1),
        **memory,
        # CPU a reading costs the daemon: draining (stored, graded once a pass) and at
        # 1 Hz (each reading graded and its state published); its bytes on disk
        "cpu_us_per_reading_draining": round(drained["cpu_share"] / drained["rate"] * 1e6, 1),
        "cpu_us_per_reading_at_1hz": round(live["cpu_share_at_1hz"] / beds * 1e6, 1),
        "db_bytes_per_reading": round(drained["db_bytes"] / m),
        **live,
        **{
            (k if k == "flood_rate" else f"flood_{k}"): v
            for k, v in flooded.items()
            if k.endswith("_ms") or k in ("flood_rate", "alerts_missing")
        },
        **stormed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beds", default="100,1000,5000")
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--flood",
        type=float,
        default=10_000.0,
        help="at 1,000 beds, also measure with one device flooding this many messages/s (0: skip)",
    )
    ap.add_argument(
        "--storm",
        type=int,
        default=1000,
        help="at 1,000 beds (or the one size given), also this many more beds raising a "
        "tier-3 alert at once, then resolving (0: skip)",
    )
    ap.add_argument(
        "--baseline-beds",
        type=int,
        default=100,
        help="after each size, a second daemon drains the same readings at this many beds: "
        "its RSS against the size's gives the marginal KB per bed (0: skip)",
    )
    ap.add_argument(
        "--shards",
        type=int,
        default=1,
        help="split the hospital by ward over this many daemons (docs/scale-out.md), "
        "measured together (no memory baseline then)",
    )
    ap.add_argument(
        "--no-front",
        action="store_true",
        help="with --shards: listen to each daemon's dashboard, not the hospital's front",
    )
    ap.add_argument(
        "--mix",
        choices=("all", "monitor"),
        default="all",
        help="what a bed's reading a second carries: every vital (all, the slowest to "
        "grade) or a bedside monitor's HR, SpO2 and RR, with the cuff every 15 minutes and "
        "temperature and ACVPU hourly (monitor)",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    args = ap.parse_args()
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "host": socket.gethostname(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "runs": [],
    }
    sizes = [int(b) for b in args.beds.split(",")]
    for beds in sizes:
        r = run_size(
            beds,
            args.messages,
            args.seconds,
            args.flood if beds == 1000 else 0.0,
            args.storm if beds == 1000 or len(sizes) == 1 else 0,
            args.baseline_beds,
            args.shards,
            args.mix,
            not args.no_front,
        )
        results["runs"].append(r)
        print(orjson.dumps(r).decode(), flush=True)
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    runs = results["runs"]
    for a, b in zip(runs, runs[1:], strict=False):
        # what one more admitted bed costs: RSS after the same work at two ward sizes
        b["marginal_kb_per_bed"] = round(
            (b["rss_after_drain_mb"] - a["rss_after_drain_mb"]) * 1024 / (b["beds"] - a["beds"]), 1
        )
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    targets = []
    for r in results["runs"]:
        targets.append(("10,000 msg/s sustained", r["daemon_rate"] >= 10_000, r["beds"]))
        targets.append(("ratio to aiomqtt > 0.5", r["ratio_to_aiomqtt"] > 0.5, r["beds"]))
        if "marginal_kb_per_bed" in r:
            targets.append(
                ("< 50 KB per admitted bed (marginal)", r["marginal_kb_per_bed"] < 50, r["beds"])
            )
        if "kb_per_bed_over_baseline" in r:
            targets.append(
                (
                    f"< 50 KB per bed (over {r['baseline_beds']} beds)",
                    r["kb_per_bed_over_baseline"] < 50,
                    r["beds"],
                )
            )
        if r["beds"] == 1000:
            targets.append(
                (
                    "p99 publish->state < 250 ms at 1,000 beds",
                    (r["state_p99_ms"] or 1e9) < 250,
                    r["beds"],
                )
            )
            if "flood_alert_p99_ms" in r:
                targets.append(
                    (
                        "a 10,000 msg/s flood keeps the others' p99 alert < 250 ms",
                        (r["flood_alert_p99_ms"] or 1e9) < 250,
                        r["beds"],
                    )
                )
    for name, ok, beds in targets:
        print(f"{'MET   ' if ok else 'MISSED'} {name} ({beds} beds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
