"""`./run demo`: the embedded broker, a simulated ward of 12 beds, the daemon and the
dashboard, all in one process and on one simulated clock (120x: something happens within
minutes). Prints the dashboard URL and the demo logins; Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

from commands.run import manage_gc
from dashboard.web import setup as setup_dashboard
from devices.ward import WardOptions, run_ward
from monitor import config
from monitor.daemon import Daemon
from monitor.store.accounts import add_user

DEMO_USERS = (
    ("nurse", "nurse", "crswatch-nurse"),
    ("doctor", "physician", "crswatch-doctor"),
    ("admin", "admin", "crswatch-admin"),
)
DB = "data/demo/crswatch.db"


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def run_demo(args) -> int:
    host = "127.0.0.1"
    mqtt_port = args.port if port_free(host, args.port) else free_port()
    http_port = args.http_port if port_free(host, args.http_port) else free_port()
    cfg = config.from_dict(
        {
            "mqtt": {
                "host": host,
                "port": mqtt_port,
                "embedded": True,
                "protocol": "3.1.1",
                "client_id": "crswatch-demo",
            },
            "storage": {"path": DB},
            "http": {"host": host, "port": http_port},
        }
    )
    for name, role, password in DEMO_USERS:
        add_user(DB, name, role, password)
    ward = WardOptions(
        host=host,
        port=mqtt_port,
        prefix=cfg.prefix,
        speed=args.speed,
        demo=True,
        discharge_first=True,
        beds=args.beds,
        seed=args.seed,
    )
    clock = ward.make_clock()
    daemon = Daemon(cfg, clock=clock, routes=setup_dashboard)
    await daemon.start()
    daemon.supervise("gc", lambda: manage_gc(daemon))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("crswatch").setLevel(logging.WARNING)  # the demo prints what matters
    simulator = asyncio.create_task(run_ward(ward, clock, stop))
    print(
        f"""
CRSWatch demo: {args.beds} simulated beds at {args.speed:g}x (research software, not a
certified medical device).
  dashboard  http://{host}:{daemon.http_port}/
  logins     nurse / crswatch-nurse   doctor / crswatch-doctor   admin / crswatch-admin
  broker     mqtt://{host}:{mqtt_port}  (try: mosquitto_sub -p {mqtt_port} -t '{cfg.prefix}/#' -v)
  health     http://{host}:{daemon.http_port}/healthz   metrics: /metrics
Ctrl-C stops.""",
        flush=True,
    )
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({simulator, waiter}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(simulator, 10)
    await daemon.stop()
    print("CRSWatch demo stopped.", flush=True)
    return 0
