"""`audit verify`: check the keyed audit chain stored in SQLite against its key and its
anchors (the anchor file, and the retained `{p}/_daemon/audit` when `--mqtt` is given).

Exit 0 intact, 1 with one line per problem on stderr (modified, deleted, inserted,
truncated, emptied, malformed), 2 when it cannot check (no database, no key).
"""

from __future__ import annotations

import sqlite3
import sys

from alerts.audit import Anchor, verify
from monitor.config import Config
from monitor.outputs.audit_trail import AuditKeyError, load_key, read_anchors
from monitor.store.reads import audit_inbox_count, audit_records
from monitor.store.schema import open_readonly


def retained_anchor(cfg: Config, timeout_s: float = 3.0) -> Anchor | None | str:
    """The retained anchor on the broker: an Anchor, None (malformed) or a reason text."""
    import paho.mqtt.client as mqtt

    topic = f"{cfg.prefix}/_daemon/audit"
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    if cfg["mqtt.username"]:
        client.username_pw_set(cfg["mqtt.username"], cfg["mqtt.password"] or None)
    if cfg["mqtt.tls_ca"]:
        client.tls_set(
            cfg["mqtt.tls_ca"], cfg["mqtt.tls_cert"] or None, cfg["mqtt.tls_key"] or None
        )
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.on_message = lambda c, u, msg: got.append(msg.payload)
    try:
        client.connect(cfg["mqtt.host"], cfg["mqtt.port"], keepalive=10)
    except OSError as e:
        return f"broker {cfg['mqtt.host']}:{cfg['mqtt.port']} not reachable ({e})"
    import time

    deadline = time.monotonic() + timeout_s
    while not got and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    if not got:
        return f"no retained anchor on {topic}"
    return Anchor.parse(got[0].decode("utf-8", "replace"))


def audit_verify(cfg: Config, mqtt: bool = False) -> int:
    key_path, anchor_path = cfg.audit_paths()
    conn = open_readonly(cfg["storage.path"], "audit")
    if conn is None:
        return 2
    try:
        key = load_key(key_path, create=False)
    except (AuditKeyError, OSError) as e:
        print(f"crswatch: audit: {e}", file=sys.stderr)
        conn.close()
        return 2
    try:
        records = audit_records(conn)
        waiting = audit_inbox_count(conn)
    except sqlite3.Error as e:
        print(f"crswatch: audit: the audit table cannot be read ({e})", file=sys.stderr)
        return 1
    finally:
        conn.close()
    anchors = read_anchors(anchor_path)
    problems_before: list[str] = []
    if anchors is None:
        problems_before.append(
            f"no anchor file at {anchor_path}: records cut off the end cannot be detected"
        )
    if mqtt:
        retained = retained_anchor(cfg)
        if isinstance(retained, str):
            problems_before.append(f"mqtt: {retained}")
        else:
            anchors = [*(anchors or []), retained]
    ok, problems, summary = verify(records, key, anchors)
    problems = problems_before + problems
    if problems:
        for line in problems:
            print(f"audit chain: {line}", file=sys.stderr)
        print(f"audit chain: BROKEN ({len(problems)} problems; {summary})", file=sys.stderr)
        return 1
    extra = f"; {waiting} records waiting for the daemon to chain them" if waiting else ""
    print(f"audit chain: intact ({summary}{extra})")
    return 0
