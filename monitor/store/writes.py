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


# -- the dashboard -------------------------------------------------------------------------
def count_failed_login(
    conn: sqlite3.Connection, name: str, now: float, max_failures: int, lockout_s: float
) -> tuple[int, float | None]:
    """One more wrong password: (failures in a row, locked_until or None). The lock starts
    the count again."""
    row = conn.execute("SELECT failed_logins FROM users WHERE username=?", (name,)).fetchone()
    failures = (row[0] or 0) + 1
    locked = now + lockout_s if failures >= max_failures else None
    conn.execute(
        "UPDATE users SET failed_logins=?, locked_until=? WHERE username=?",
        (0 if locked else failures, locked, name),
    )
    return failures, locked


def start_session(
    conn: sqlite3.Connection, session: dict[str, Any], new_hash: str | None, now: float
) -> None:
    """A login succeeded: its session, the failure count cleared, a re-hashed password."""
    name = session["username"]
    conn.execute("DELETE FROM sessions WHERE expires_ts < ?", (now,))
    conn.execute(
        "INSERT INTO sessions (token_hash, username, created_ts, expires_ts, csrf, kind) "
        "VALUES (:token_hash, :username, :created_ts, :expires_ts, :csrf, :kind)",
        session,
    )
    conn.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE username=?", (name,))
    if new_hash:
        conn.execute("UPDATE users SET password_hash=? WHERE username=?", (new_hash, name))


def end_session(conn: sqlite3.Connection, token_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash=?", (token_hash,))


def insert_override(conn: sqlite3.Connection, row: dict[str, Any]) -> int:
    """A physician's confirmation or override of a grade; its id."""
    cur = conn.execute(
        "INSERT INTO grade_overrides (admission_id, ward, bed, patient_id, ts, username, "
        "scale, grade, reason) VALUES (:admission_id, :ward, :bed, :patient_id, :ts, "
        ":username, :scale, :grade, :reason)",
        row,
    )
    return cur.lastrowid or 0
