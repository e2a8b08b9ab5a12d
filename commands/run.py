"""`main.py run` (`./run start`): the production daemon with its dashboard, until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal

from dashboard.web import setup as setup_dashboard
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.ops import gcpolicy

log = logging.getLogger("crswatch")


async def manage_gc(daemon: Daemon) -> None:
    """The process's collector as monitor/ops/gcpolicy.py explains (a daemon process only:
    tests run several daemons in one process and keep Python's defaults)."""
    gcpolicy.configure(lambda s, g: daemon.metrics.gc_pause.labels(str(g)).observe(s))
    gcpolicy.full_and_freeze()
    while not await daemon._sleep(gcpolicy.FULL_EVERY_S):
        gcpolicy.full_and_freeze()


async def run_until_signal(cfg: Config) -> None:
    daemon = Daemon(cfg, routes=setup_dashboard)
    await daemon.start()
    gc_task = asyncio.create_task(manage_gc(daemon))  # noqa: F841 - ends with the daemon
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    await stopping.wait()
    log.info("stopping")
    await daemon.stop()
