"""`main.py hospital --config hospital.toml`: one hospital over several daemons.

Starts each daemon of hospital.toml in a process of its own under one supervisor
(hospital/supervisor.py) and serves the hospital's one dashboard (hospital/front.py) until
SIGINT or SIGTERM (status 0), or until a daemon keeps exiting (status 1). With
`--front-only` the daemons are someone else's to run (systemd units, other machines).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from hospital.app import make_app
from hospital.config import Hospital
from hospital.supervisor import Processes
from monitor.ops.supervisor import Supervisor, until_signal

log = logging.getLogger("crswatch.hospital")


def add_arguments(sub) -> None:
    hp = sub.add_parser("hospital", help="several daemons split by ward, one dashboard")
    hp.add_argument("--config", default="hospital.toml", help="hospital file (TOML)")
    hp.add_argument(
        "--front-only",
        action="store_true",
        help="serve the dashboard only; the daemons run elsewhere",
    )


async def run_hospital(h: Hospital, front_only: bool) -> int:
    fatal = asyncio.Event()
    reason: list[str] = []

    def on_fatal(why: str) -> None:
        reason.append(why)
        fatal.set()

    processes = Processes(h.daemons, Supervisor(on_fatal=on_fatal, stopping=asyncio.Event()))
    if not front_only:
        processes.start()
    runner = web.AppRunner(make_app(h), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, h.host, h.port)
    await site.start()
    log.info(
        "hospital dashboard on http://%s:%d before %s",
        h.host,
        h.port,
        ", ".join(f"{d.name} ({', '.join(d.wards)}) at {d.url}" for d in h.daemons),
    )
    await until_signal(fatal)
    if fatal.is_set():
        log.critical("exiting with status 1: %s", reason[0])
    else:
        log.info("stopping")
    await runner.cleanup()
    await processes.stop()
    return 1 if fatal.is_set() else 0
