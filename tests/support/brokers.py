"""A real MQTT broker for tests, on a free port: Mosquitto when the binary is on PATH,
the embedded amqtt broker (in its own process) otherwise. Restartable, with persistence,
so tests can stop and start it mid-stream."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, up: bool = True, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if (s.connect_ex(("127.0.0.1", port)) == 0) == up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not come {'up' if up else 'down'}")


class TestBroker:
    __test__ = False  # not a test class

    def __init__(
        self,
        workdir: Path,
        kind: str | None = None,
        persistent: bool = True,
        extra_conf: tuple[str, ...] = (),
    ):
        self.workdir = Path(workdir)
        self.persistent = persistent
        self.extra_conf = extra_conf
        self.workdir.mkdir(parents=True, exist_ok=True)
        # CRSWATCH_BROKER=amqtt forces the embedded broker (what a machine without
        # Mosquitto gets), to check that the suite holds there too.
        self.kind = (
            kind
            or os.environ.get("CRSWATCH_BROKER")
            or ("mosquitto" if shutil.which("mosquitto") else "amqtt")
        )
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        # the daemon's default; tests of MQTT 5 ask for it (amqtt speaks 3.1.1 only)
        self.protocol = "3.1.1"
        self.conf_text = ""  # a whole Mosquitto config to run instead of the generated one

    def _command(self) -> list[str]:
        if self.kind == "mosquitto" and self.conf_text:
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(self.conf_text)
            return ["mosquitto", "-c", str(conf)]
        if self.kind == "mosquitto":
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"listener {self.port} 127.0.0.1",
                        *self.extra_conf,
                        f"persistence {'true' if self.persistent else 'false'}",
                        f"persistence_location {self.workdir}/",
                        "autosave_interval 1",
                        # A ward's daemon may be away for a while: keep everything queued for it.
                        "max_queued_messages 1000000",
                        "max_inflight_messages 1000",
                        "log_dest stderr",
                        "log_type error",
                        # run as root (CI), Mosquitto would drop to its own user and could not
                        # read the test's files (password file, certificates) in a 0700 tmp dir
                        *(["user root"] if os.geteuid() == 0 else []),
                    ]
                )
                + "\n"
            )
            if not any(c.startswith("allow_anonymous") for c in self.extra_conf):
                conf.write_text(conf.read_text() + "allow_anonymous true\n")
            return ["mosquitto", "-c", str(conf)]
        code = (
            f"import asyncio, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from monitor.ops.broker import start_broker\n"
            "async def main():\n"
            f"    await start_broker('127.0.0.1', {self.port})\n"
            "    await asyncio.Event().wait()\n"
            "asyncio.run(main())\n"
        )
        return [sys.executable, "-c", code]

    def start(self) -> TestBroker:
        log = open(self.workdir / "broker.log", "ab")
        self.proc = subprocess.Popen(
            self._command(), stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        wait_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()


def locked_broker(workdir: Path, files: dict[str, Path]) -> TestBroker:
    """Mosquitto on the shipped deploy/mosquitto/mosquitto.conf, unchanged but for its
    port, its files (`files`: ca.crt, server.crt, server.key, passwd, acl) and its logs."""
    b = TestBroker(workdir, kind="mosquitto")
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    swaps = {
        "listener 8883\n": f"listener {b.port} 127.0.0.1\n",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {b.workdir}/",
        "log_dest syslog": "log_dest stderr",
        **{f"/etc/mosquitto/crswatch/{name}": str(path) for name, path in files.items()},
    }
    for old, new in swaps.items():
        assert old in text, f"the shipped mosquitto.conf no longer has {old!r}"
        text = text.replace(old, new)
    # as root (CI) Mosquitto would drop to its own user and not read the test's files
    b.conf_text = text + ("user root\n" if os.geteuid() == 0 else "")
    return b
