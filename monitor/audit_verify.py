"""`audit verify`: check the tamper-evident audit chain stored in SQLite."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from alerts.audit import verify

from .alerting import audit_records
from .config import Config


def audit_verify(cfg: Config) -> int:
    path = Path(cfg["storage.path"])
    if not path.exists():
        print(f"crswatch: audit: no database at {path}", file=sys.stderr)
        return 2
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        records = audit_records(conn)
    finally:
        conn.close()
    ok, index, message = verify(records)
    print(f"audit chain: {message}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
