"""An append-only, tamper-evident audit chain of alert events and user actions.

Each record holds the hash of the one before it (`prev`; the first holds GENESIS) and its
own `hash`: HMAC-SHA256, under a secret key kept outside the database, of prev + the
canonical JSON of the record without `hash` (sorted keys, no spaces, UTF-8). Without the
key nobody can compute a hash: changing, deleting, inserting or reordering a record breaks
the chain at that point, and re-hashing a forged chain is impossible.

Cutting records off the end (or emptying the table) leaves a valid shorter chain: the
daemon therefore publishes its (count, head) outside the database, in an append-only
anchor file and a retained MQTT message (`Anchor`). `verify` checks the records against
the key and every anchor and returns one line per problem; it never raises on a malformed
record.
"""

from __future__ import annotations

import hashlib
import hmac
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


def _digest(key: bytes, prev: str, body: dict[str, Any]) -> str:
    return hmac.new(key, (prev + canonical(body)).encode("utf-8"), hashlib.sha256).hexdigest()


def chain(prev_hash: str, event: AuditEvent, key: bytes) -> dict[str, Any]:
    """The record to append after the record whose hash is `prev_hash` (GENESIS first)."""
    body = {
        "name": event.name,
        "ts": event.ts,
        "actor": event.actor,
        "alert_id": event.alert_id,
        "detail": event.detail,
        "prev": prev_hash,
    }
    return {**body, "hash": _digest(key, prev_hash, body)}


@dataclass(frozen=True, slots=True)
class Anchor:
    """The chain as the daemon knew it at `ts`: `count` records ending with `head`,
    signed with the same key (`mac`) so that it cannot be forged either."""

    count: int
    head: str
    ts: str
    mac: str = ""

    @classmethod
    def of(cls, count: int, head: str, ts: str, key: bytes) -> Anchor:
        return cls(count, head, ts, _anchor_mac(key, count, head, ts))

    def to_json(self) -> str:
        return canonical({"count": self.count, "head": self.head, "ts": self.ts, "mac": self.mac})

    @classmethod
    def parse(cls, line: str) -> Anchor | None:
        try:
            data = json.loads(line)
            a = cls(int(data["count"]), str(data["head"]), str(data["ts"]), str(data["mac"]))
        except (ValueError, TypeError, KeyError):
            return None
        return a if a.count >= 0 else None


def _anchor_mac(key: bytes, count: int, head: str, ts: str) -> str:
    return hmac.new(key, f"anchor:{count}:{head}:{ts}".encode(), hashlib.sha256).hexdigest()


def _label(rec: Any, i: int) -> str:
    seq = rec.get("seq") if isinstance(rec, dict) else None
    return f"record {i}" + (f" (seq {seq})" if seq is not None and seq != i + 1 else "")


def _problems_of(rec: Any, i: int, prev: str, key: bytes) -> list[str]:
    label = _label(rec, i)
    if not isinstance(rec, dict) or not {*FIELDS, "hash"} <= set(rec):
        return [f"{label}: not an audit record (fields missing)"]
    out = []
    if rec["prev"] != prev:
        where = f"does not follow record {i - 1}" if i else "does not start the chain"
        out.append(f"{label}: {where} (a record was deleted, inserted or reordered)")
    detail = rec["detail"]
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return [*out, f"{label}: its detail is not valid JSON (malformed: modified)"]
    body = {k: rec[k] for k in FIELDS if k != "detail"} | {"detail": detail}
    try:
        digest = _digest(key, rec["prev"], body)
    except (TypeError, ValueError):
        return [*out, f"{label}: content is not canonical JSON (malformed: modified)"]
    if not isinstance(rec["hash"], str) or not hmac.compare_digest(digest, rec["hash"]):
        out.append(f"{label}: its hash does not match its content under the key (modified)")
    return out


def verify(
    records: Sequence[Any], key: bytes, anchors: Sequence[Anchor | None] | None = None
) -> tuple[bool, list[str], str]:
    """(ok, one line per problem, a summary line). `anchors` None: none to check against
    (then a cut-off end cannot be seen); a None in it is an anchor line that did not parse."""
    problems: list[str] = []
    prev: Any = GENESIS
    hashes: list[Any] = []
    for i, rec in enumerate(records):
        problems += _problems_of(rec, i, prev, key)
        prev = rec.get("hash") if isinstance(rec, dict) else None
        hashes.append(prev)
    n = len(records)
    for j, a in enumerate(anchors or ()):
        if a is None or not hmac.compare_digest(a.mac, _anchor_mac(key, a.count, a.head, a.ts)):
            problems.append(f"anchor {j}: malformed or not signed with the key (forged)")
            continue
        if a.count > n:
            what = "the audit table is empty" if n == 0 else f"the chain holds {n} records"
            problems.append(
                f"anchor {j} ({a.ts}): {what} but {a.count} were anchored "
                "(records deleted from the end: truncated)"
            )
        elif a.count and hashes[a.count - 1] != a.head:
            problems.append(
                f"anchor {j} ({a.ts}): record {a.count - 1} is not the anchored head "
                "(the chain was rewritten)"
            )
    if len(problems) > 50:
        problems = [*problems[:50], f"... and {len(problems) - 50} more problems"]
    anchored = max((a.count for a in anchors or () if a is not None), default=0)
    summary = f"{n} records, {len(anchors or ())} anchors (last anchored count {anchored})"
    return not problems, problems, summary
