"""`audit verify`: check the tamper-evident audit chain stored in SQLite."""

from __future__ import annotations

import sys

from alerts.audit import verify
from monitor.config import Config
from monitor.store.reads import audit_records
from monitor.store.schema import open_readonly


def audit_verify(cfg: Config) -> int:
    conn = open_readonly(cfg["storage.path"], "audit")
    if conn is None:
        return 2
    try:
        records = audit_records(conn)
    finally:
        conn.close()
    ok, index, message = verify(records)
    print(f"audit chain: {message}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
