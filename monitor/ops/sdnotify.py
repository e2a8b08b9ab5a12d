"""systemd's notify protocol (sd_notify(3)), the few lines the daemon needs.

Under a unit with `Type=notify` and `WatchdogSec=`, systemd passes a unix datagram socket
in `NOTIFY_SOCKET`. The daemon sends `READY=1` once it serves, `WATCHDOG=1` from its state
loop (so a loop that is stuck, not only a dead process, gets the service restarted) and
`STOPPING=1` when it stops. Without `NOTIFY_SOCKET` (a terminal, the tests) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("crswatch.sdnotify")


class Notifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket (Linux)
            address = "\0" + address[1:]
        self.address = address
        self.sock: socket.socket | None = None
        if address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.setblocking(False)
        self.watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        self.failed = False

    def notify(self, message: str) -> bool:
        """Send one state line ("READY=1", "WATCHDOG=1", "STATUS=..."); True if sent."""
        if self.sock is None:
            return False
        try:
            self.sock.sendto(message.encode(), self.address)
        except OSError as e:
            if not self.failed:  # say it once: systemd would kill us on a missed watchdog
                log.error("sd_notify to %r failed: %s", self.address, e)
            self.failed = True
            return False
        self.failed = False
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
