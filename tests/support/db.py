"""Read a daemon's SQLite file the way an operator would (a separate connection)."""

from __future__ import annotations

import sqlite3


def query(path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def count(path, table: str, where: str = "1", *args) -> int:
    rows = query(path, f"SELECT count(*) FROM {table} WHERE {where}", *args)
    return rows[0][0] if rows else 0
