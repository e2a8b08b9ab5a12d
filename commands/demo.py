"""`./run demo`: the embedded broker, a simulated ward of 12 beds, the daemon and the
dashboard, all in one process and on one simulated clock (120x: something happens within
minutes). Prints the dashboard URL and the demo logins, then one status line; Ctrl-C stops
everything cleanly.

Every start is a clean new ward: the previous run's database is moved to
data/demo/previous/ (a demo re-admits the same simulated patients at day 0, and their old
readings would be dated in the future of the new clock). The logs (the daemon's and the
embedded broker's) go to data/demo/demo.log, never the terminal. Logins last a shift of
wall time (sessions run on the wall clock, not the simulated one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from commands.demo_pace import Pacing, pace, status_line
from commands.run import manage_gc
from dashboard.web import setup as setup_dashboard
from devices.clock import SimClock
from devices.ward import WardOptions, run_ward
from monitor import config
from monitor.daemon import Daemon
from monitor.store.accounts import add_user

DEMO_USERS = (
    ("nurse", "nurse", "ward-round-7"),
    ("doctor", "physician", "on-call-page-3"),
    ("admin", "admin", "accounts-only-9"),
)
DIR = Path("data/demo")
DB = str(DIR / "crswatch.db")
LOG = DIR / "demo.log"
NOISY = ("amqtt", "transitions", "asyncio")  # loggers whose repeats are throttled
STATUS_EVERY_S = 1.0  # on a terminal: the status line is rewritten in place
STATUS_LOG_EVERY_S = 30.0  # to a file or a pipe: a line every 30 s


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pick_port(host: str, wanted: int, what: str, option: str) -> tuple[int, str | None]:
    """`wanted`, or a free port and the sentence saying why."""
    if port_free(host, wanted):
        return wanted, None
    port = free_port(host)
    return port, (
        f"  note: {what} port {wanted} is busy (another demo or service?): using {port} "
        f"instead; choose one with {option}"
    )


def fresh_ward(directory: Path = DIR) -> str | None:
    """Move the previous run's database aside; the sentence saying so, or None."""
    db = directory / "crswatch.db"
    if not db.exists():
        return None
    previous = directory / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for suffix in ("", "-wal", "-shm"):
        f = directory / f"crswatch.db{suffix}"
        if f.exists():
            f.rename(previous / f.name)
    return f"  a clean new ward: the previous run's database is kept in {previous}/"


class Throttle(logging.Filter):
    """At most one record a minute per logger and message, with the count of the others
    and without the traceback: an overloaded embedded broker repeats the same complaint
    thousands of times a minute (226 MB of log in 27 minutes, once)."""

    def __init__(self, every_s: float = 60.0, clock=time.monotonic):
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self.seen: dict[tuple[str, object], list] = {}  # key -> [last shown, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, record.msg)
        now = self.clock()
        entry = self.seen.get(key)
        if entry is not None and now - entry[0] < self.every_s:
            entry[1] += 1
            return False
        if len(self.seen) > 10_000:
            self.seen.clear()
        suppressed = entry[1] if entry else 0
        self.seen[key] = [now, 0]
        if record.exc_info:
            kind = record.exc_info[0].__name__ if record.exc_info[0] else "error"
            record.msg, record.args = f"{record.getMessage()} ({kind}; traceback left out)", ()
            record.exc_info = record.exc_text = None
        if suppressed:
            record.msg, record.args = f"{record.getMessage()} [{suppressed} more like it]", ()
        return True


def log_to_file(path: Path) -> None:
    """Every log record (daemon, amqtt broker, asyncio) to `path`, none to the terminal;
    the embedded broker's and asyncio's repeated complaints throttled (Throttle)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")  # one run per log
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    throttle = Throttle()
    handler.addFilter(lambda r: throttle.filter(r) if r.name.split(".")[0] in NOISY else True)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("amqtt", "transitions"):  # the broker's own chatter: warnings and worse
        logging.getLogger(name).setLevel(logging.WARNING)


async def show_status(daemon: Daemon, pacing: Pacing, stop: asyncio.Event, out=sys.stdout):
    tty = out.isatty()
    every = STATUS_EVERY_S if tty else STATUS_LOG_EVERY_S
    zone = ZoneInfo(daemon.cfg.alerting.timezone or "UTC")
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        when = datetime.fromtimestamp(daemon.clock(), zone).strftime("%d %b %H:%M %Z")
        line = status_line(daemon, pacing, when)
        if tty:
            width = shutil.get_terminal_size((160, 20)).columns
            out.write("\r\x1b[2K" + line[: width - 1])
        else:
            out.write(line + "\n")
        out.flush()
    if tty:
        out.write("\n")


@dataclass
class Demo:
    """A running demo: the daemon (with its embedded broker and dashboard), the simulated
    ward publishing to it, and the pacer, on one simulated clock."""

    daemon: Daemon
    clock: SimClock
    ward: WardOptions
    stop: asyncio.Event
    simulator: asyncio.Task
    pacer: asyncio.Task
    mqtt_port: int


async def start_demo(
    db: str, beds: int, speed: float, seed: int, mqtt_port: int, http_port: int
) -> Demo:
    host = "127.0.0.1"
    cfg = config.from_dict(
        {
            "mqtt": {
                "host": host,
                "port": mqtt_port,
                "embedded": True,
                "protocol": "3.1.1",
                "client_id": "crswatch-demo",
            },
            "storage": {"path": db},
            "http": {"host": host, "port": http_port},
        }
    )
    for name, role, password in DEMO_USERS:
        add_user(db, name, role, password)
    ward = WardOptions(
        host=host,
        port=mqtt_port,
        prefix=cfg.prefix,
        speed=speed,
        demo=True,
        discharge_first=True,
        beds=beds,
        seed=seed,
    )
    clock = ward.make_clock()
    daemon = Daemon(cfg, clock=clock, routes=setup_dashboard)
    daemon.pacing = Pacing(asked=speed)
    await daemon.start()
    stop = asyncio.Event()
    simulator = asyncio.create_task(run_ward(ward, clock, stop))
    pacer = asyncio.create_task(
        pace(
            clock,
            daemon.ward,
            daemon.pacing,
            stop,
            cadence_s=ward.fast_interval_s,
            stale_s=cfg["vitals.fast_stale_s"],
        )
    )
    return Demo(daemon, clock, ward, stop, simulator, pacer, mqtt_port)


async def stop_demo(demo: Demo) -> None:
    demo.stop.set()
    for task in (demo.simulator, demo.pacer):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
    await demo.daemon.stop()


async def run_demo(args) -> int:
    host = "127.0.0.1"
    DIR.mkdir(parents=True, exist_ok=True)
    notes = [fresh_ward()]
    mqtt_port, note = pick_port(host, args.port, "MQTT", "--port")
    notes.append(note)
    http_port, note = pick_port(host, args.http_port, "HTTP", "--http-port")
    notes.append(note)
    log_to_file(LOG)
    demo = await start_demo(DB, args.beds, args.speed, args.seed, mqtt_port, http_port)
    daemon, stop = demo.daemon, demo.stop
    daemon.supervise("gc", lambda: manage_gc(daemon))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    prefix = daemon.cfg.prefix
    print(
        f"""
CRSWatch demo: {args.beds} simulated beds at {args.speed:g}x (research software, not a
certified medical device).
  dashboard  http://{host}:{daemon.http_port}/
  logins     nurse / ward-round-7   doctor / on-call-page-3   admin / accounts-only-9
  broker     mqtt://{host}:{mqtt_port}  (try: mosquitto_sub -p {mqtt_port} -t '{prefix}/#' -v)
  health     http://{host}:{daemon.http_port}/healthz   metrics: /metrics
  logs       {LOG}
{chr(10).join(n for n in notes if n)}
The simulation slows down (never below 1x) when the daemon falls behind it. Ctrl-C stops.""",
        flush=True,
    )
    status = asyncio.create_task(show_status(daemon, daemon.pacing, stop))
    waiter = asyncio.create_task(stop.wait())
    simulator = demo.simulator
    await asyncio.wait({simulator, waiter}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    if simulator.done() and not simulator.cancelled() and simulator.exception() is not None:
        logging.getLogger("crswatch").error("simulator stopped", exc_info=simulator.exception())
        print(f"\nthe simulator stopped: {simulator.exception()} (see {LOG})", flush=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(status, 5)
    await stop_demo(demo)
    print("CRSWatch demo stopped.", flush=True)
    return 0
