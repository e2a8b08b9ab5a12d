"""An append-only, tamper-evident audit chain of alert events and user actions.

Each record holds the hash of the one before it (`prev`; the first holds GENESIS) and its
own `hash`: SHA-256 of prev + the canonical JSON of the record without `hash` (sorted keys,
no spaces, UTF-8). Changing, deleting, inserting or reordering a record breaks the chain at
that point; `verify` names the first bad index. Cutting records off the end leaves a valid
shorter chain: pass the head hash stored elsewhere (`head=`) to detect it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = ("name", "ts", "actor", "alert_id", "detail", "prev")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    name: str  # "alert.raised", "alert.acknowledged", "user.login", ...
    ts: str  # ISO 8601 UTC
    actor: str  # "system" or the user
    alert_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def at(
        cls,
        name: str,
        now: float,
        actor: str,
        alert_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return cls(name, utc(now), actor, alert_id, dict(detail or {}))

    @classmethod
    def of_decision(cls, d: Any) -> AuditEvent:
        """The audit event of an engine Decision (notified or suppressed alike)."""
        a = d.alert
        return cls.at(
            f"alert.{d.event}",
            a["ts"],
            d.actor,
            a["id"],
            {
                "tier": a["tier"],
                "kind": a["kind"],
                "ward": a["ward"],
                "bed": a["bed"],
                "patient_id": a["patient_id"],
                "state": a["state"],
                "notify": d.notify,
                "receivers": list(d.receivers),
                "channels": list(d.channels),
                "reason": d.reason,
            },
        )


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _digest(prev: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev + canonical(body)).encode("utf-8")).hexdigest()


def chain(prev_hash: str, event: AuditEvent) -> dict[str, Any]:
    """The record to append after the record whose hash is `prev_hash` (GENESIS first)."""
    body = {
        "name": event.name,
        "ts": event.ts,
        "actor": event.actor,
        "alert_id": event.alert_id,
        "detail": event.detail,
        "prev": prev_hash,
    }
    return {**body, "hash": _digest(prev_hash, body)}


def verify(
    records: Sequence[dict[str, Any]], head: str | None = None
) -> tuple[bool, int | None, str]:
    """(ok, index of the first bad record or None, message)."""
    prev = GENESIS
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or set(rec) != {*FIELDS, "hash"}:
            return False, i, f"record {i}: not an audit record (fields differ)"
        if rec["prev"] != prev:
            return (
                False,
                i,
                (
                    f"record {i}: does not follow record {i - 1}"
                    if i
                    else "record 0: does not start the chain"
                )
                + " (a record was deleted, inserted or reordered)",
            )
        body = {k: rec[k] for k in FIELDS}
        try:
            digest = _digest(prev, body)
        except (TypeError, ValueError):
            return False, i, f"record {i}: content is not canonical JSON"
        if digest != rec["hash"]:
            return False, i, f"record {i}: hash does not match its content (modified)"
        prev = rec["hash"]
    if head is not None and prev != head:
        return (
            False,
            len(records),
            ("the chain does not end at the stored head: records were cut off the end or appended"),
        )
    return True, None, f"{len(records)} records, chain intact"
