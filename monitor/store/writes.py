"""Writes that run inside the one writer's transaction (`Store.transact(fn, ...)`): each is
a plain function of the writer's connection. Item and timeline rows are written by
monitor/store/writer.py itself."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson


def replace_forecast_state(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Replace the forecast's saved state: a snapshot is either still pending or already in
    the model, never both, never neither."""
    conn.execute("DELETE FROM forecast_state")
    conn.executemany(
        "INSERT INTO forecast_state (kind, key, data) VALUES (?, ?, ?)",
        [(r["kind"], r["key"], orjson.dumps(r["data"]).decode()) for r in rows],
    )


def delete_audit_inbox(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Forget inbox records the daemon has chained (their audit records are committed)."""
    conn.executemany("DELETE FROM audit_inbox WHERE id=?", [(i,) for i in ids])
