"""The audit chain's files outside the database: its HMAC key and its anchor.

* The key (32 random bytes, hex) is created 0600 when missing; a key readable by others is
  made 0600 with a warning. Whoever holds it can forge the chain: keep it where the
  database's readers are not (audit.key_path).
* The anchor file holds one signed line per change of the chain's (count, head), appended
  (O_APPEND, fsync) by the daemon only, after the records it covers were committed. Make it
  append-only for the service user too (`chattr +a`); the same line is published retained
  on `{p}/_daemon/audit`.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from alerts.audit import Anchor
from monitor.store.schema import create_private

log = logging.getLogger("crswatch.audit")


class AuditKeyError(Exception):
    """No usable key: str() is the one line to show."""


def load_key(path: str, create: bool = True) -> bytes:
    p = Path(path)
    if not p.exists():
        if not create:
            raise AuditKeyError(f"no audit key at {path}")
        p.parent.mkdir(parents=True, exist_ok=True)
        create_private(path)
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("created the audit key %s (0600)", path)
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077 and create:
        log.warning("audit key %s was readable by others (%o): made 0600", path, mode)
        p.chmod(0o600)
    try:
        key = bytes.fromhex(p.read_text().strip())
    except (ValueError, UnicodeDecodeError):
        raise AuditKeyError(f"the audit key {path} is not hex") from None
    if len(key) < 16:
        raise AuditKeyError(f"the audit key {path} is shorter than 16 bytes")
    return key


def append_anchor(path: str, anchor: Anchor) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (anchor.to_json() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_anchors(path: str) -> list[Anchor | None] | None:
    """Every anchor line (None for one that does not parse), or None without a file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return [Anchor.parse(line) for line in text.splitlines() if line.strip()]
