"""Every read of the store: what the daemon restores at start, a patient's history for the
dashboard and API, the export, the audit chain.

Plain functions over a reader connection (WAL lets them run beside the writer); call them
in a thread from async code. Writes are the writer's (monitor/store/writer.py, writes.py).
"""

from __future__ import annotations

import sqlite3

import orjson

from monitor.store.schema import VITAL_COLUMNS


def open_reader(path: str, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """The one way to open a reader: rows by name, usable from a worker thread, waiting
    up to busy_timeout_s for a lock held by a writer of another process."""
    conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout_s)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    return conn


def _rows(conn: sqlite3.Connection, sql: str, *args) -> list[dict]:
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def patient_history(
    conn: sqlite3.Connection, patient_id: str, since: float | None = None
) -> dict | None:
    """Everything stored about one patient: admissions, observations (one row per time
    point), the grade timeline, care events, alerts with their events. None if unknown."""
    admissions = _rows(
        conn,
        "SELECT id, ward, bed, admitted_ts, discharged_ts, age, product, "
        "indication, infusion_ts, spo2_scale FROM admissions "
        "WHERE patient_id=? ORDER BY admitted_ts",
        patient_id,
    )
    if not admissions:
        return None
    since = since if since is not None else 0.0
    cols = ", ".join(VITAL_COLUMNS)
    observations = _rows(
        conn,
        f"SELECT ts, ward, bed, {cols} FROM observations "
        "WHERE patient_id=? AND ts >= ? ORDER BY ts",
        patient_id,
        since,
    )
    grades = _rows(
        conn,
        "SELECT ts, late, crs_grade, crs_at_least, icans_grade, "
        "icans_at_least, news2_total, news2_band, news2_band_at_least, "
        "news2_complete, reasons FROM grades WHERE patient_id=? AND ts >= ? "
        "ORDER BY ts, id",
        patient_id,
        since,
    )
    for g in grades:
        g["reasons"] = orjson.loads(g["reasons"])
    care = _rows(
        conn,
        "SELECT ts, type, data FROM care_events WHERE patient_id=? AND ts >= ? ORDER BY ts",
        patient_id,
        since,
    )
    for c in care:
        c.update(orjson.loads(c.pop("data")))
    alerts = _rows(
        conn,
        "SELECT id, kind, tier, state, raised_ts, updated_ts, record "
        "FROM alerts WHERE patient_id=? ORDER BY raised_ts",
        patient_id,
    )
    for a in alerts:
        a["record"] = orjson.loads(a["record"])
        a["events"] = _rows(
            conn,
            "SELECT ts, event, tier, notify, receivers, reason "
            "FROM alert_events WHERE alert_id=? ORDER BY id",
            a["id"],
        )
    overrides = _rows(
        conn,
        "SELECT ts, username, scale, grade, reason FROM grade_overrides "
        "WHERE patient_id=? ORDER BY ts",
        patient_id,
    )
    return {
        "patient_id": patient_id,
        "admissions": admissions,
        "observations": [{k: v for k, v in o.items() if v is not None} for o in observations],
        "grades": grades,
        "care": care,
        "alerts": alerts,
        "overrides": overrides,
    }


# -- what the daemon restores at start ------------------------------------------------------
RESTORED_VITALS = (
    "hr",
    "rr",
    "spo2",
    "sbp",
    "dbp",
    "map",
    "temp_c",
    "o2_flow_lpm",
    "fio2",
    "acvpu",
)


def admission_rows(conn: sqlite3.Connection) -> list[tuple]:
    """Every admission, oldest first: (id, ward, bed, patient_id, admitted_ts, age, product,
    indication, infusion_ts, spo2_scale, discharged_ts)."""
    return conn.execute(
        "SELECT id, ward, bed, patient_id, admitted_ts, age, product, indication, "
        "infusion_ts, spo2_scale, discharged_ts FROM admissions ORDER BY admitted_ts"
    ).fetchall()


def restore_observations(
    conn: sqlite3.Connection, admission_id: str, history_s: float, fever_c: float
) -> list[tuple[float, dict]]:
    """An admission's first fever and its observations of the last `history_s` before its
    newest one, oldest first (the fever first), as (ts, {vital: value})."""
    sel = f"SELECT ts, {', '.join(RESTORED_VITALS)} FROM observations WHERE admission_id=?"
    newest = (
        conn.execute(
            "SELECT max(ts) FROM observations WHERE admission_id=?", (admission_id,)
        ).fetchone()[0]
        or 0.0
    )
    rows = conn.execute(
        f"{sel} AND ts >= ? ORDER BY ts", (admission_id, newest - history_s)
    ).fetchall()
    fever = conn.execute(
        f"{sel} AND temp_c >= ? ORDER BY ts LIMIT 1", (admission_id, fever_c)
    ).fetchall()
    return [
        (row[0], {c: v for c, v in zip(RESTORED_VITALS, row[1:], strict=True) if v is not None})
        for row in fever + rows
    ]


def care_rows(conn: sqlite3.Connection, admission_id: str) -> list[tuple[float, str, dict]]:
    """An admission's care events, oldest first, as (ts, type, data)."""
    return [
        (ts, type_, orjson.loads(data))
        for ts, type_, data in conn.execute(
            "SELECT ts, type, data FROM care_events WHERE admission_id=? ORDER BY ts",
            (admission_id,),
        )
    ]


def forecast_state_rows(conn: sqlite3.Connection) -> list[dict]:
    """The forecast's saved state (monitor/store/writes.py replace_forecast_state)."""
    return [
        {"kind": k, "key": key, "data": orjson.loads(data)}
        for k, key, data in conn.execute("SELECT kind, key, data FROM forecast_state")
    ]


def active_alert_records(conn: sqlite3.Connection) -> list[dict]:
    """The alert engine's records of every alert not resolved (AlertEngine.restore)."""
    rows = conn.execute(
        "SELECT engine FROM alerts WHERE state != 'resolved' AND engine IS NOT NULL"
    )
    return [orjson.loads(r[0]) for r in rows]


def audit_head(conn: sqlite3.Connection) -> str | None:
    """The hash of the newest audit record, None when there is none."""
    row = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0] if row else None


def audit_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]


def audit_records(conn: sqlite3.Connection) -> list[dict]:
    """The audit table as alerts.audit.verify reads it: `detail` left as stored (text),
    so a malformed row is named by verify instead of failing here."""
    return [
        {
            "seq": seq,
            "name": name,
            "ts": ts,
            "actor": actor,
            "alert_id": alert_id,
            "detail": detail,
            "prev": prev,
            "hash": digest,
        }
        for seq, ts, name, actor, alert_id, detail, prev, digest in conn.execute(
            "SELECT seq, ts, name, actor, alert_id, detail, prev, hash FROM audit ORDER BY seq"
        )
    ]


def audit_inbox(conn: sqlite3.Connection, limit: int = 500) -> list[tuple]:
    """Audit records left by other processes (`user add`...) for the daemon to chain:
    (id, ts, name, actor, detail text), oldest first."""
    try:
        return conn.execute(
            "SELECT id, ts, name, actor, detail FROM audit_inbox ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
    except sqlite3.OperationalError:  # a database from before the inbox
        return []


def audit_inbox_count(conn: sqlite3.Connection) -> int:
    return len(audit_inbox(conn, 1_000_000))


# -- the dashboard: sessions, accounts, stored alerts ---------------------------------------
def session_row(conn: sqlite3.Connection, token_hash: str):
    """A session with its user's role and state, or None."""
    return conn.execute(
        "SELECT s.username, s.csrf, s.created_ts, s.expires_ts, u.role, u.disabled, "
        "u.changed_ts FROM sessions s JOIN users u ON u.username = s.username "
        "WHERE s.token_hash=?",
        (token_hash,),
    ).fetchone()


def login_row(conn: sqlite3.Connection, username: str):
    """What a login checks of an account, or None."""
    return conn.execute(
        "SELECT username, password_hash, role, locked_until, disabled FROM users WHERE username=?",
        (username,),
    ).fetchone()


def account_rows(conn: sqlite3.Connection) -> list:
    return conn.execute(
        "SELECT username, role, created_ts, locked_until, disabled FROM users ORDER BY username"
    ).fetchall()


def stored_alerts(conn: sqlite3.Connection, state: str, ward: str | None, limit: int) -> list[dict]:
    """Alert records from the `alerts` table, newest first (`state` "all": any)."""
    sql, args = "SELECT record FROM alerts WHERE 1", list[object]()
    if state != "all":
        sql += " AND state=?"
        args.append(state)
    if ward:
        sql += " AND ward=?"
        args.append(ward)
    sql += " ORDER BY raised_ts DESC LIMIT ?"
    args.append(limit)
    return [orjson.loads(r[0]) for r in conn.execute(sql, args)]


def alert_record(conn: sqlite3.Connection, alert_id: str) -> dict | None:
    row = conn.execute("SELECT record FROM alerts WHERE id=?", (alert_id,)).fetchone()
    return orjson.loads(row[0]) if row else None


def alert_event_rows(conn: sqlite3.Connection, alert_id: str) -> list[dict]:
    return _rows(
        conn,
        "SELECT ts, event, tier, notify, receivers, reason, message "
        "FROM alert_events WHERE alert_id=? ORDER BY id",
        alert_id,
    )


def latest_admission(conn: sqlite3.Connection, patient_id: str) -> tuple[str, str, str] | None:
    """(id, ward, bed) of a patient's latest admission, or None."""
    row = conn.execute(
        "SELECT id, ward, bed FROM admissions WHERE patient_id=? ORDER BY admitted_ts DESC LIMIT 1",
        (patient_id,),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


# -- export -----------------------------------------------------------------------------------
def observation_rows(conn: sqlite3.Connection, patient_id: str):
    """A patient's observations, one dict per time point (ts, patient_id, ward, bed, every
    vital column), oldest first."""
    names = ("ts", "patient_id", "ward", "bed", *VITAL_COLUMNS)
    cur = conn.execute(
        f"SELECT {', '.join(names)} FROM observations WHERE patient_id=? ORDER BY ts, ward, bed",
        (patient_id,),
    )
    for row in cur:
        yield dict(zip(names, row, strict=True))
