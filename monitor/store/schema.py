"""The SQLite schema, as sqlite-utils migrations (each runs in its own transaction).

Add a new migration at the end; never edit one that has shipped.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("crswatch")

VITAL_COLUMNS = {
    "hr": float,
    "rr": float,
    "spo2": float,
    "sbp": float,
    "dbp": float,
    "map": float,
    "temp_c": float,
    "o2_flow_lpm": float,
    "fio2": float,
    "acvpu": str,
}


@migrations()
def m001_core(db: Database) -> None:
    db.table("admissions").create(
        {
            "id": str,
            "ward": str,
            "bed": str,
            "patient_id": str,
            "admitted_ts": float,
            "discharged_ts": float,
            "age": float,
            "product": str,
            "indication": str,
            "infusion_ts": float,
            "spo2_scale": int,
            "received_ts": float,
        },
        pk="id",
        not_null={"ward", "bed", "patient_id", "admitted_ts"},
    )
    db.table("admissions").create_index(["ward", "bed", "discharged_ts"])
    db.table("admissions").create_index(["patient_id"])
    # One wide row per time point of a bed; vitals arriving separately for the same
    # time point are merged into it.
    db.table("observations").create(
        {
            "ward": str,
            "bed": str,
            "ts": float,
            "admission_id": str,
            "patient_id": str,
            **VITAL_COLUMNS,
            "source": str,
            "received_ts": float,
        },
        pk=("ward", "bed", "ts"),
        not_null={"admission_id", "patient_id"},
    )
    db.table("observations").create_index(["patient_id", "ts"])
    db.table("care_events").create(
        {
            "id": int,
            "admission_id": str,
            "ward": str,
            "bed": str,
            "patient_id": str,
            "ts": float,
            "type": str,
            "data": str,
            "received_ts": float,
        },
        pk="id",
    )
    db.table("care_events").create_index(["admission_id", "ts", "type", "data"], unique=True)
    db.table("device_events").create(
        {
            "id": int,
            "ward": str,
            "bed": str,
            "state": str,
            "received_ts": float,
        },
        pk="id",
    )
    db.table("rejections").create(
        {
            "id": int,
            "received_ts": float,
            "topic": str,
            "reason": str,
            "payload": bytes,
        },
        pk="id",
    )
    # The grade timeline: one row per change of a patient's grades, with its reasons.
    db.table("grades").create(
        {
            "id": int,
            "admission_id": str,
            "ward": str,
            "bed": str,
            "patient_id": str,
            "ts": float,
            "recorded_ts": float,
            "late": int,
            "crs_grade": int,
            "crs_at_least": int,
            "icans_grade": int,
            "icans_at_least": int,
            "news2_total": int,
            "news2_band": str,
            "news2_band_at_least": str,
            "news2_complete": int,
            "reasons": str,
        },
        pk="id",
    )
    db.table("grades").create_index(["admission_id", "ts"])
    db.table("heartbeat").create({"id": int, "ts": float}, pk="id")


@migrations()
def m002_people_and_alerts(db: Database) -> None:
    db.table("users").create(
        {
            "username": str,
            "password_hash": str,
            "role": str,
            "created_ts": float,
            "failed_logins": int,
            "locked_until": float,
            "disabled": int,
        },
        pk="username",
        not_null={"password_hash", "role"},
    )
    # Session and API tokens: only a hash of the token is stored.
    db.table("sessions").create(
        {
            "token_hash": str,
            "username": str,
            "created_ts": float,
            "expires_ts": float,
            "csrf": str,
            "kind": str,
        },
        pk="token_hash",
    )
    db.table("sessions").create_index(["username"])
    # Alerts: one row per alert (its current record), and every event it went through.
    db.table("alerts").create(
        {
            "id": str,
            "ward": str,
            "bed": str,
            "patient_id": str,
            "kind": str,
            "tier": int,
            "state": str,
            "raised_ts": float,
            "updated_ts": float,
            "record": str,  # the public snapshot (what the dashboard and the API show)
            "engine": str,  # the engine's own record, to restore it after a restart
        },
        pk="id",
    )
    db.table("alerts").create_index(["state"])
    db.table("alerts").create_index(["patient_id"])
    db.table("alert_events").create(
        {
            "id": int,
            "alert_id": str,
            "ts": float,
            "event": str,
            "tier": int,
            "notify": int,
            "receivers": str,
            "reason": str,
            "message": str,
        },
        pk="id",
    )
    db.table("alert_events").create_index(["alert_id"])
    # Deliveries that could not be made (webhook receivers that stayed down).
    db.table("dead_letters").create(
        {
            "id": int,
            "ts": float,
            "receiver": str,
            "channel": str,
            "alert_id": str,
            "event": str,
            "error": str,
            "body": str,
        },
        pk="id",
    )
    # Append-only, tamper-evident audit chain of alert events and user actions.
    # Columns mirror alerts.audit.chain(): `detail` is canonical JSON, `ts` ISO 8601 UTC.
    db.table("audit").create(
        {
            "seq": int,
            "ts": str,
            "name": str,
            "actor": str,
            "alert_id": str,
            "detail": str,
            "prev": str,
            "hash": str,
        },
        pk="seq",
    )
    # A physician's confirmation or override of a grade, with the reason.
    db.table("grade_overrides").create(
        {
            "id": int,
            "admission_id": str,
            "ward": str,
            "bed": str,
            "patient_id": str,
            "ts": float,
            "username": str,
            "scale": str,
            "grade": int,
            "reason": str,
        },
        pk="id",
    )


@migrations()
def m003_forecast(db: Database) -> None:
    # The online forecast's model, quality, per-patient features and pending snapshots,
    # replaced together in one transaction (forecast/service.py: to_rows).
    db.table("forecast_state").create({"kind": str, "key": str, "data": str}, pk=("kind", "key"))


@migrations()
def m004_rejection_counts(db: Database) -> None:
    # A flooding bed's rejections are stored as one row per commit: `count` messages
    # received from received_ts to last_received_ts (the first one's payload kept).
    db.table("rejections").add_column("count", int, not_null_default=1)
    db.table("rejections").add_column("last_received_ts", float)


@migrations()
def m005_security(db: Database) -> None:
    # Audit records written by other processes (`user add`, `user disable`...): the daemon,
    # the chain's one writer, moves them into `audit` (keyed and anchored) and deletes them.
    db.table("audit_inbox").create(
        {"id": int, "ts": float, "name": str, "actor": str, "detail": str}, pk="id"
    )
    # When the account last changed (password, role, disabled): sessions made before are
    # void, even if a row was left behind.
    db.table("users").add_column("changed_ts", float)


def create_private(path: str) -> None:
    """Create `path` empty with mode 0600 unless it exists (a database, a key): SQLite
    and its -wal and -shm files then keep that mode."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def open_readonly(path: str, command: str) -> sqlite3.Connection | None:
    """A read-only connection for a command (export, audit...), or None after saying on
    stderr that there is no database: an operator's typo must not create an empty one."""
    if not Path(path).exists():
        print(f"crswatch: {command}: no database at {path}", file=sys.stderr)
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def open_db(path: str, busy_timeout_s: float = 5.0) -> Database:
    """Open (creating) the database: WAL, FULL sync (an acknowledged message survives a
    power cut), a busy timeout, and every pending migration applied."""
    create_private(str(path))
    db = Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    migrations.apply(db)
    return db
