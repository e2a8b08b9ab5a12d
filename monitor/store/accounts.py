"""Dashboard accounts: argon2id password hashes in the `users` table, and `user add`.

`python main.py user add NAME --role nurse|physician|admin [--password-stdin] [--config P]`
runs in its own process and writes SQLite directly: WAL and the busy timeout let it do so
beside a running daemon.

Adding a user that exists sets its password and role, clears a lock-out and ends every
session of that user (a reset password must log out whoever had the old one); it prints
"updated" rather than "created" so nobody mistakes one for the other.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("nurse", "physician", "admin")
MIN_PASSWORD = 8
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
HASHER = PasswordHasher()  # argon2id, the library's current recommended parameters


class UserError(ValueError):
    """A bad name, role or password: str() is the one line to show."""


def check(name: str, role: str, password: str) -> None:
    if not NAME.match(name or ""):
        raise UserError("user name must be 1-64 of A-Z a-z 0-9 _ . @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if not password:
        raise UserError("empty password")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def put_user(conn: sqlite3.Connection, name: str, role: str, password_hash: str, now: float) -> str:
    """Create or update (see the module notes) inside the caller's transaction; returns
    "created" or "updated"."""
    exists = conn.execute("SELECT 1 FROM users WHERE username=?", (name,)).fetchone()
    if exists:
        conn.execute(
            "UPDATE users SET password_hash=?, role=?, failed_logins=0, "
            "locked_until=NULL, disabled=0 WHERE username=?",
            (password_hash, role, name),
        )
        conn.execute("DELETE FROM sessions WHERE username=?", (name,))
        return "updated"
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_ts, "
        "failed_logins, locked_until, disabled) VALUES (?, ?, ?, ?, 0, NULL, 0)",
        (name, password_hash, role, now),
    )
    return "created"


def add_user(db_path: str, name: str, role: str, password: str, busy_timeout_s: float = 5.0) -> str:
    """Create the user, or update its password and role; "created" or "updated"."""
    import time

    from monitor.store.schema import open_db

    check(name, role, password)
    password_hash = hash_password(password)
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    db = open_db(str(db_path), busy_timeout_s)  # creates the file and tables if new
    conn = db.conn
    conn.isolation_level = None  # explicit BEGIN/COMMIT
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = put_user(conn, name, role, password_hash, time.time())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result
    finally:
        conn.close()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(message)


def _read_password(args, stdin: TextIO) -> str:
    if args.password_stdin:
        line = stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass(f"Password for {args.name}: ")
    if not first:
        raise UserError("empty password")
    second = getpass.getpass("Again: ")
    if first != second:
        raise UserError("the two passwords differ")
    return first


def main_user_add(args_list: list[str], stdin: TextIO = sys.stdin) -> int:
    """`user add NAME --role ROLE [--password-stdin] [--config PATH]`: 0 done, 2 for a bad
    command line, role, password or config (one line on stderr)."""
    from monitor.config import ConfigError, load

    p = _Parser(prog="crswatch user add", add_help=False)
    p.add_argument("name")
    p.add_argument("--role", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--config", default="config.toml")
    try:
        args = p.parse_args(args_list)
        check(args.name, args.role, "x" * MIN_PASSWORD)  # name and role before the prompt
        cfg = load(args.config)
        password = _read_password(args, stdin)
        check(args.name, args.role, password)
        result = add_user(
            cfg["storage.path"], args.name, args.role, password, cfg["storage.busy_timeout_s"]
        )
    except UserError as e:
        print(f"crswatch user add: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"crswatch user add: config: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("crswatch user add: no password given", file=sys.stderr)
        return 2
    except sqlite3.Error as e:
        print(f"crswatch user add: database: {e}", file=sys.stderr)
        return 1
    print(f"{result} user {args.name} ({args.role})")
    return 0
