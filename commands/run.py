"""`main.py run` (`./run start`): the production daemon with its dashboard, until a signal."""

from __future__ import annotations

import logging

from dashboard.web import setup as setup_dashboard
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.ops import gcpolicy
from monitor.ops.supervisor import until_signal

log = logging.getLogger("crswatch")


async def manage_gc(daemon: Daemon) -> None:
    """The process's collector as monitor/ops/gcpolicy.py explains (a daemon process only:
    tests run several daemons in one process and keep Python's defaults)."""
    gcpolicy.configure(lambda s, g: daemon.metrics.gc_pause.labels(str(g)).observe(s))
    gcpolicy.full_and_freeze()
    while not await daemon._sleep(gcpolicy.FULL_EVERY_S):
        gcpolicy.full_and_freeze()


async def run_until_signal(cfg: Config) -> int:
    """Run the daemon until SIGINT/SIGTERM (exit status 0), or until one of its tasks
    keeps failing (1: a service manager restarts the process)."""
    daemon = Daemon(cfg, routes=setup_dashboard)
    await daemon.start()
    daemon.supervise("gc", lambda: manage_gc(daemon))
    await until_signal(daemon.fatal, on_hup=daemon.reload)
    if daemon.fatal.is_set():
        log.critical("exiting with status 1: %s", daemon.fatal_reason)
    else:
        log.info("stopping")
    await daemon.stop()
    return 1 if daemon.fatal.is_set() else 0
