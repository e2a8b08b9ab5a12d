"""Read-only views of the store for the dashboard and API: a patient's history.

Plain functions over a reader connection (WAL lets them run beside the writer); call them
in a thread from async code.
"""

from __future__ import annotations

import sqlite3

import orjson

from monitor.store.schema import VITAL_COLUMNS


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
