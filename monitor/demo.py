"""`./run demo`: the embedded broker, the daemon and (when present) a simulated ward."""

from __future__ import annotations

import asyncio
import signal
import socket

from . import config
from .daemon import Daemon


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
    cfg = config.from_dict({
        "mqtt": {"host": host, "port": mqtt_port, "embedded": True, "protocol": "3.1.1",
                 "client_id": "crswatch-demo"},
        "storage": {"path": "data/demo/crswatch.db"},
        "http": {"host": host, "port": http_port},
    })
    daemon = Daemon(cfg)
    await daemon.start()
    print(f"CRSWatch demo: broker mqtt://{host}:{mqtt_port} (topics under "
          f"'{cfg.prefix}/'), dashboard http://{host}:{daemon.http_port}/ "
          f"(health: /healthz, metrics: /metrics). Ctrl-C stops.", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await daemon.stop()
    print("CRSWatch demo stopped.", flush=True)
    return 0
