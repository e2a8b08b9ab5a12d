"""`export --patient ID`: a patient's stored observations, one line per time point
(jsonl, csv), or everything stored about the patient as a FHIR R4 Bundle (fhir)."""

from __future__ import annotations

import csv
import sqlite3
import sys
from typing import TextIO

import orjson

from commands.fhir_bundle import bundle
from monitor.clock import iso, wall_clock
from monitor.config import Config
from monitor.store.reads import observation_rows, patient_history
from monitor.store.schema import VITAL_COLUMNS, open_readonly

HEAD = ("ts", "patient_id", "ward", "bed")


def rows(conn: sqlite3.Connection, patient_id: str):
    for rec in observation_rows(conn, patient_id):
        rec["ts"] = iso(rec["ts"])
        yield rec


def export(cfg: Config, patient_id: str, fmt: str, out: TextIO) -> int:
    conn = open_readonly(cfg["storage.path"], "export")
    if conn is None:
        return 2
    try:
        n = 0
        if fmt == "fhir":
            history = patient_history(conn, patient_id)
            if history is not None and history["observations"]:
                out.write(
                    orjson.dumps(bundle(history, wall_clock()), option=orjson.OPT_INDENT_2).decode()
                    + "\n"
                )
                n = len(history["observations"])
        elif fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=HEAD + tuple(VITAL_COLUMNS))
            writer.writeheader()
            for rec in rows(conn, patient_id):
                writer.writerow(rec)
                n += 1
        else:
            for rec in rows(conn, patient_id):
                present = {k: v for k, v in rec.items() if v is not None}
                out.write(orjson.dumps(present).decode() + "\n")
                n += 1
    finally:
        conn.close()
    if n == 0:
        print(f"crswatch: export: no observations stored for patient {patient_id}", file=sys.stderr)
        return 1
    return 0
