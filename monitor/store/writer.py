"""The one writer: every SQLite write goes through `Store.write`, a single thread fed
batch by batch. One transaction per batch; each message inside it in a savepoint, so a
message that turns out bad (a conflicting value) is rolled back alone and rejected.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path

import orjson

from monitor.ingest.items import Item, kept_topic
from monitor.ingest.messages import Admission, CareEvent, Discharge, Observation, Rejected
from monitor.store.reads import open_reader
from monitor.store.schema import VITAL_COLUMNS, open_db

COLS = tuple(VITAL_COLUMNS)
_SELECT_OBS = f"SELECT {', '.join(COLS)} FROM observations WHERE ward=? AND bed=? AND ts=?"
_MARKS = ", ".join("?" * len(COLS))
_INSERT_OBS = (
    f"INSERT OR IGNORE INTO observations (ward, bed, ts, admission_id, patient_id, "
    f"{', '.join(COLS)}, source, received_ts) VALUES (?, ?, ?, ?, ?, {_MARKS}, ?, ?)"
)


class StoreError(Exception):
    """The database refused a write (disk full, locked, read-only): nothing was committed."""


class _InCaller(Executor):
    """Runs each call at once, in the caller's thread: the writer of a throw-away database
    that one thread drives synchronously (replay), spared a thread hand-off per batch."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as e:  # handed to the caller by result(), as the pool does
            done.set_exception(e)
        return done


class Store:
    def __init__(self, path: str | Path, busy_timeout_s: float = 5.0, durable: bool = True):
        self.path = str(path)
        self.busy_timeout_s = busy_timeout_s
        # False only for throw-away databases (replay): no fsync, and no writer thread
        # (every write runs in the one thread that calls, one at a time)
        self.durable = durable
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._pool: Executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            if durable
            else _InCaller()
        )
        self._db = self._pool.submit(self._open).result()

    def _open(self):
        db = open_db(self.path, self.busy_timeout_s)
        if not self.durable:
            db.execute("PRAGMA synchronous=OFF")
        db.conn.isolation_level = None  # explicit BEGIN/COMMIT below
        return db

    # -- the writer ------------------------------------------------------------------
    async def write(self, items: list[Item], extra: list[tuple[str, dict]] = ()) -> None:
        """Commit `items` (and `extra` rows: (table, row)) in one transaction. Raises
        StoreError when nothing could be committed."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._write, items, list(extra))

    def write_sync(self, items: list[Item], extra: list[tuple[str, dict]] = ()) -> None:
        self._pool.submit(self._write, items, list(extra)).result()

    def _write(self, items: list[Item], extra: list[tuple[str, dict]]) -> None:
        conn = self._db.conn
        before = [(item.kind, item.reason) for item in items]
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in items:
                # an item rejected before it writes has nothing to roll back
                savepoint = not _writes_once(item)
                if savepoint:
                    conn.execute("SAVEPOINT item")
                try:
                    self._apply(conn, item)
                except Rejected as e:
                    if savepoint:
                        conn.execute("ROLLBACK TO item")
                    item.reject(e.reason)
                    self._put_rejection(conn, item)
                if savepoint:
                    conn.execute("RELEASE item")
            for table, row in extra:
                cols = ", ".join(row)
                conn.execute(
                    f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
            conn.execute("COMMIT")
        except BaseException as e:  # nothing of the batch stays: not even an open transaction
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item, (kind, reason) in zip(items, before, strict=True):
                # the next attempt starts from scratch
                item.kind, item.reason, item.new, item.points = kind, reason, [], 0
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"{type(e).__name__}: {e}") from e
            raise  # a bug: the pipeline's supervisor reports it

    def _apply(self, conn: sqlite3.Connection, item: Item) -> None:
        """Write one item. An item that `_writes_once` raises Rejected, if at all, before
        it has written anything; any other may have to be rolled back to its savepoint."""
        kind = item.kind
        if kind == "vitals":
            item.new = []
            for obs in item.body:
                added = self._put_observation(conn, item, obs)
                if added is not None:
                    item.new.append(added)
                    item.points += added is obs  # a whole new time point, not a merge
            if not item.new:
                item.kind, item.reason = "duplicate", "every value already stored"
        elif kind == "care":
            self._put_care(conn, item)
        elif kind == "admit":
            self._put_admit(conn, item)
        elif kind == "discharge":
            body: Discharge = item.body
            conn.execute(
                "UPDATE admissions SET discharged_ts=? WHERE id=?", (body.ts, item.record.id)
            )
        elif kind == "device":
            conn.execute(
                "INSERT INTO device_events (ward, bed, state, received_ts) VALUES (?, ?, ?, ?)",
                (item.ward, item.bed, item.body.state, item.received_ts),
            )
        elif kind == "reject":
            self._put_rejection(conn, item)

    def _put_observation(self, conn, item: Item, obs: Observation) -> Observation | None:
        """Insert a new time point, or merge vitals into an existing one. Returns what was
        new (None for an exact duplicate); raises Rejected on a conflicting value."""
        rec = item.record
        cur = conn.execute(
            _INSERT_OBS,
            (
                item.ward,
                item.bed,
                obs.ts,
                rec.id,
                rec.patient_id,
                *(obs.values.get(c) for c in COLS),
                item.source,
                item.received_ts,
            ),
        )
        if cur.rowcount == 1:  # the common case: a new time point, one statement
            return obs
        row = conn.execute(_SELECT_OBS, (item.ward, item.bed, obs.ts)).fetchone()
        stored = dict(zip(COLS, row, strict=True))
        new = {}
        for name, value in obs.values.items():
            old = stored[name]
            if old is None:
                new[name] = value
            elif old != value:
                raise Rejected(
                    f"{name}: a different value is already stored for this bed at this time"
                )
        if not new:
            return None
        sets = ", ".join(f"{k}=?" for k in new)
        conn.execute(
            f"UPDATE observations SET {sets} WHERE ward=? AND bed=? AND ts=?",
            (*new.values(), item.ward, item.bed, obs.ts),
        )
        return Observation(obs.ts, new)

    def _put_care(self, conn, item: Item) -> None:
        ev: CareEvent = item.body
        rec = item.record
        cur = conn.execute(
            "INSERT OR IGNORE INTO care_events (admission_id, ward, bed, patient_id, ts, "
            "type, data, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                item.ward,
                item.bed,
                rec.patient_id,
                ev.ts,
                ev.type,
                orjson.dumps(ev.data, option=orjson.OPT_SORT_KEYS).decode(),
                item.received_ts,
            ),
        )
        if cur.rowcount == 0:
            item.kind, item.reason = "duplicate", "care event already stored"

    def _put_admit(self, conn, item: Item) -> None:
        rec = item.record
        a: Admission = item.body
        conn.execute(
            "INSERT OR IGNORE INTO admissions (id, ward, bed, patient_id, admitted_ts, age, "
            "product, indication, infusion_ts, spo2_scale, received_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                item.ward,
                item.bed,
                a.patient_id,
                a.ts,
                a.age,
                a.product,
                a.indication,
                a.infusion_ts,
                a.spo2_scale,
                item.received_ts,
            ),
        )

    def _put_rejection(self, conn, item: Item) -> None:
        last = item.last_ts if item.count > 1 else item.received_ts
        if item.merge_into:  # a flood's later messages: counted in the row of its first
            cur = conn.execute(
                "UPDATE rejections SET count = count + ?, last_received_ts = ? WHERE id = ?",
                (item.count, last, item.merge_into),
            )
            if cur.rowcount == 1:
                item.row_id = item.merge_into
                return
        cur = conn.execute(
            "INSERT INTO rejections (received_ts, topic, reason, payload, count, "
            "last_received_ts) VALUES (?, ?, ?, ?, ?, ?)",
            (
                item.received_ts,
                kept_topic(item.topic),
                item.reason,
                item.payload,  # cut to ingest.rejected_payload_max when received
                item.count,
                item.last_ts if item.count > 1 else None,
            ),
        )
        item.row_id = cur.lastrowid or 0

    async def transact(self, fn, *args):
        """Run `fn(conn, *args)` in the writer thread, inside one transaction, and return
        its result: how code other than the ingest path (logins, alert actions, the audit
        chain) writes without a second writer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._transact, fn, args)

    def transact_sync(self, fn, *args):
        return self._pool.submit(self._transact, fn, args).result()

    def _transact(self, fn, args):
        conn = self._db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = fn(conn, *args)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- reads (separate connections: WAL lets readers run beside the writer) -----------
    def reader(self) -> sqlite3.Connection:
        return open_reader(self.path, self.busy_timeout_s)

    def close(self) -> None:
        self._pool.submit(self._db.conn.close).result()
        self._pool.shutdown()


def _writes_once(item: Item) -> bool:
    """One statement at most, or a rejection before any write: no savepoint is needed
    (a savepoint costs two statements, on the path of every reading). A vitals item of
    several time points may reject its second after storing its first."""
    if item.kind == "vitals":
        return len(item.body) == 1
    return item.kind in ("care", "admit", "discharge", "device", "reject")
