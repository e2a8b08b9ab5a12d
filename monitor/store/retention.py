"""What the store forgets: rejections past `storage.rejections_keep_days`.

Rejections are evidence for an integrator (what was refused and why), not patient data,
and anyone who can publish can make more of them: they are kept for a bounded time.
Deleted in small transactions through the one writer, oldest first, so a large backlog
never holds the writer for long.
"""

from __future__ import annotations

import sqlite3

PRUNE_BATCH = 5000


def prune_rejections(conn: sqlite3.Connection, before_ts: float, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` rejections received before `before_ts`; returns how many."""
    cur = conn.execute(
        "DELETE FROM rejections WHERE id IN "
        "(SELECT id FROM rejections WHERE received_ts < ? ORDER BY id LIMIT ?)",
        (before_ts, limit),
    )
    return cur.rowcount
