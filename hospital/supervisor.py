"""One supervisor for the hospital's daemons: each is `main.py run --config FILE` in a
process of its own (its own core), started again when it exits, with a backoff that
doubles (monitor/ops/supervisor.py). A daemon that exits five times in five minutes is
not started again: the hospital stops with status 1, for systemd to act on, and says why.

Stopping sends each daemon SIGTERM (it drains and closes as `main.py run` does), and
SIGKILL after STOP_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from monitor.ops.supervisor import Supervisor

from .config import Daemon

log = logging.getLogger("crswatch.hospital")

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 30.0


class DaemonExited(Exception):
    pass


class Processes:
    def __init__(self, daemons: tuple[Daemon, ...], supervisor: Supervisor):
        self.daemons = daemons
        self.supervisor = supervisor
        self.running: dict[str, asyncio.subprocess.Process] = {}

    def start(self) -> None:
        for d in self.daemons:
            self.supervisor.start(f"daemon {d.name}", lambda d=d: self.run(d))

    async def run(self, d: Daemon) -> None:
        """One life of daemon d: returns only when the hospital stops."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "main.py"), "run", "--config", str(d.config_path), cwd=ROOT
        )
        self.running[d.name] = proc
        log.info("daemon %s (wards %s) started, pid %d", d.name, ", ".join(d.wards), proc.pid)
        try:
            status = await proc.wait()
        except asyncio.CancelledError:
            await self._stop(d.name, proc)
            raise
        finally:
            self.running.pop(d.name, None)
        if self.supervisor.stopping.is_set():
            return
        raise DaemonExited(
            f"daemon {d.name} (wards {', '.join(d.wards)}) exited with status {status}"
        )

    async def _stop(self, name: str, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_TIMEOUT_S)
        except TimeoutError:
            log.error("daemon %s did not stop within %.0f s: killed", name, STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def stop(self) -> None:
        self.supervisor.stopping.set()
        await asyncio.gather(*(self._stop(n, p) for n, p in list(self.running.items())))
        for task in self.supervisor.tasks.values():
            task.cancel()
        await asyncio.gather(*self.supervisor.tasks.values(), return_exceptions=True)
