"""The daemon: bytes from bedside devices in -> graded beds, alerts and stored rows out.

The data path, one sub-package a step (imports flow down it only; pyproject.toml's
import-linter contracts check it):
    ingest/    topic + bytes -> a routed item, or a rejection with its reason
    clinical/  pure scales: a snapshot in, CRS/ICANS/NEWS2 grades with reasons out
    state/     one admission's streams -> an assessment -> the published bed state
    store/     the one SQLite writer and every SQL statement
    outputs/   alerting (via alerts/), the dashboard's live hub, webhooks
    ops/       running the process: /healthz, /metrics, GC, the embedded broker
daemon.py wires and supervises them; pipeline.py is the path itself; replay.py drives the
same pipeline from a recording.
"""
