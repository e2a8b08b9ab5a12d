"""Dashboard accounts: argon2id password hashes in the `users` table, and the `user` CLI.

`python main.py user add NAME --role nurse|physician|admin [--password-stdin] [--config P]`
`python main.py user disable|enable|revoke NAME [--config P]`
run in their own process and write SQLite directly: WAL and the busy timeout let them do
so beside a running daemon. Each change is queued in `audit_inbox` in the same
transaction; the daemon moves it into the keyed audit chain.

Adding a user that exists sets its password and role, clears a lock-out and ends every
session of that user (a reset password must log out whoever had the old one); it prints
"updated" rather than "created" so nobody mistakes one for the other. `disable` refuses
every login and ends the sessions; `revoke` ends the sessions only. A running daemon
closes the live pages of those sessions within seconds.

Passwords (NIST SP 800-63B 5.1.1.2): at least MIN_PASSWORD characters, at most
MAX_PASSWORD, not one character repeated, not the user name, and not a common password
(`common_passwords.txt`, also with digits or punctuation added at the end).
"""

from __future__ import annotations

import argparse
import getpass
import re
import sqlite3
import sys
import time
from functools import cache
from pathlib import Path
from typing import TextIO

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("nurse", "physician", "admin")
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 hashes anything; a megabyte "password" is an attack
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
HASHER = PasswordHasher()  # argon2id, the library's current recommended parameters
COMMON = Path(__file__).with_name("common_passwords.txt")
_TAIL = re.compile(r"[\d\W_]+$")


class UserError(ValueError):
    """A bad name, role or password: str() is the one line to show."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def check_name_role(name: str, role: str) -> None:
    if not NAME.match(name or ""):
        raise UserError("user name must be 1-64 of A-Z a-z 0-9 _ . @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")


def check_password(name: str, password: str) -> None:
    if not password:
        raise UserError("empty password")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password must be at most {MAX_PASSWORD} characters")
    low = password.lower()
    if len(set(low)) == 1:
        raise UserError("password is one character repeated")
    if name and name.lower() in low:
        raise UserError("password contains the user name")
    common = common_passwords()
    stem = _TAIL.sub("", low)
    if low in common or (len(stem) >= 4 and stem in common):
        raise UserError("password is too common (it is on the list of common passwords)")


def check(name: str, role: str, password: str) -> None:
    check_name_role(name, role)
    check_password(name, password)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def put_user(conn: sqlite3.Connection, name: str, role: str, password_hash: str, now: float) -> str:
    """Create or update (see the module notes) inside the caller's transaction; returns
    "created", "updated" (new password, same role) or "role_changed"."""
    row = conn.execute("SELECT role FROM users WHERE username=?", (name,)).fetchone()
    if row:
        conn.execute(
            "UPDATE users SET password_hash=?, role=?, failed_logins=0, "
            "locked_until=NULL, disabled=0, changed_ts=? WHERE username=?",
            (password_hash, role, now, name),
        )
        conn.execute("DELETE FROM sessions WHERE username=?", (name,))
        return "updated" if row[0] == role else "role_changed"
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_ts, "
        "failed_logins, locked_until, disabled, changed_ts) VALUES (?, ?, ?, ?, 0, NULL, 0, ?)",
        (name, password_hash, role, now, now),
    )
    return "created"


def role_of(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT role FROM users WHERE username=?", (name,)).fetchone()
    return row[0] if row else None


def set_disabled(conn: sqlite3.Connection, name: str, disabled: bool, now: float) -> bool:
    """Disable (ending every session) or enable an account; False when it does not exist."""
    cur = conn.execute(
        "UPDATE users SET disabled=?, changed_ts=?, failed_logins=0, locked_until=NULL "
        "WHERE username=?",
        (int(disabled), now, name),
    )
    if disabled:
        conn.execute("DELETE FROM sessions WHERE username=?", (name,))
    return cur.rowcount > 0


def set_role(conn: sqlite3.Connection, name: str, role: str, now: float) -> str | None:
    """Change the role (ending every session); the previous role, or None if unknown."""
    before = role_of(conn, name)
    if before is not None:
        conn.execute("UPDATE users SET role=?, changed_ts=? WHERE username=?", (role, now, name))
        conn.execute("DELETE FROM sessions WHERE username=?", (name,))
    return before


def set_password(conn: sqlite3.Connection, name: str, password_hash: str, now: float) -> bool:
    cur = conn.execute(
        "UPDATE users SET password_hash=?, changed_ts=?, failed_logins=0, locked_until=NULL "
        "WHERE username=?",
        (password_hash, now, name),
    )
    conn.execute("DELETE FROM sessions WHERE username=?", (name,))
    return cur.rowcount > 0


def end_sessions(conn: sqlite3.Connection, name: str) -> int:
    """Delete every session of `name`; how many there were."""
    return conn.execute("DELETE FROM sessions WHERE username=?", (name,)).rowcount


def queue_audit(conn: sqlite3.Connection, name: str, actor: str, detail: dict, now: float) -> None:
    """An audit record for the daemon to chain (written by a process that is not it)."""
    conn.execute(
        "INSERT INTO audit_inbox (ts, name, actor, detail) VALUES (?, ?, ?, ?)",
        (now, name, actor, orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode()),
    )


def _write(db_path: str, busy_timeout_s: float, fn, *args):
    """Run fn(conn, *args) in one IMMEDIATE transaction of the database (created 0600)."""
    from monitor.store.schema import open_db

    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    db = open_db(str(db_path), busy_timeout_s)  # creates the file and tables if new
    conn = db.conn
    conn.isolation_level = None  # explicit BEGIN/COMMIT
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result
    finally:
        conn.close()


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def add_user(
    db_path: str,
    name: str,
    role: str,
    password: str,
    busy_timeout_s: float = 5.0,
    actor: str | None = None,
) -> str:
    """Create the user, or update its password and role; "created" or "updated"."""
    check(name, role, password)
    password_hash = hash_password(password)
    who = actor or _cli_actor()

    def put(conn):
        before = role_of(conn, name)
        result = put_user(conn, name, role, password_hash, time.time())
        event = "user.created" if result == "created" else "user.password_reset"
        detail = {"username": name, "role": role}
        if result == "role_changed":
            detail["previous_role"] = before
        queue_audit(conn, event, who, detail, time.time())
        if result == "role_changed":
            queue_audit(conn, "user.role_changed", who, detail, time.time())
        return result

    result = _write(db_path, busy_timeout_s, put)
    return "created" if result == "created" else "updated"


def change_account(db_path: str, name: str, action: str, busy_timeout_s: float = 5.0) -> str:
    """`disable`, `enable` or `revoke` from the CLI; the line to print."""
    who = _cli_actor()

    def change(conn):
        now = time.time()
        if role_of(conn, name) is None:
            raise UserError(f"no user {name!r}")
        if action == "revoke":
            n = end_sessions(conn, name)
            queue_audit(conn, "user.sessions_revoked", who, {"username": name, "sessions": n}, now)
            return f"ended {n} session{'s' if n != 1 else ''} of {name}"
        set_disabled(conn, name, action == "disable", now)
        queue_audit(conn, f"user.{action}d", who, {"username": name}, now)
        return f"{action}d user {name}" + (" (its sessions ended)" if action == "disable" else "")

    return _write(db_path, busy_timeout_s, change)


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
    return main_user(["add", *args_list], stdin)


def main_user(args_list: list[str], stdin: TextIO = sys.stdin) -> int:
    """`user add|disable|enable|revoke ...`: 0 done, 1 database error, 2 for a bad command
    line, name, role, password or config (one line on stderr)."""
    from monitor.config import ConfigError, load

    command = args_list[0] if args_list else ""
    p = _Parser(prog=f"crswatch user {command}", add_help=False)
    p.add_argument("name")
    p.add_argument("--config", default="config.toml")
    if command == "add":
        p.add_argument("--role", required=True)
        p.add_argument("--password-stdin", action="store_true")
    try:
        if command not in ("add", "disable", "enable", "revoke"):
            raise UserError("expected add, disable, enable or revoke")
        args = p.parse_args(args_list[1:])
        if command == "add":
            check_name_role(args.name, args.role)  # name and role before the prompt
        elif not NAME.match(args.name):
            raise UserError("user name must be 1-64 of A-Z a-z 0-9 _ . @ -")
        cfg = load(args.config)
        if command == "add":
            password = _read_password(args, stdin)
            check(args.name, args.role, password)
            result = add_user(
                cfg["storage.path"], args.name, args.role, password, cfg["storage.busy_timeout_s"]
            )
            line = f"{result} user {args.name} ({args.role})"
        else:
            line = change_account(
                cfg["storage.path"], args.name, command, cfg["storage.busy_timeout_s"]
            )
    except UserError as e:
        print(f"crswatch user {command}: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"crswatch user {command}: config: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print(f"crswatch user {command}: no password given", file=sys.stderr)
        return 2
    except sqlite3.Error as e:
        print(f"crswatch user {command}: database: {e}", file=sys.stderr)
        return 1
    print(line)
    return 0
