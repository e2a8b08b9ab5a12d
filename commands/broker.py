"""`main.py broker add NAME --role ROLE`: a broker account and its ACL, for the locked
Mosquitto set-up of deploy/mosquitto/.

Writes the user's password hash into Mosquitto's `password_file` (the format of
`mosquitto_passwd`: PBKDF2-SHA512, `$7$`; the password never appears on a command line)
and replaces or appends the user's block in the `acl_file`. Mosquitto reads both again on
SIGHUP (`systemctl reload mosquitto`). Each role may use only what it needs:

| role      | may publish                                   | may read                  |
|-----------|-----------------------------------------------|---------------------------|
| device    | its own bed's vitals, fhir, hl7, device       | nothing                   |
| gateway   | the same for every bed of its ward            | nothing                   |
| ehr       | admit, discharge, care (every bed, or a ward) | nothing                   |
| daemon    | state, alerts, rejected, _daemon/status       | every inbound topic       |
| dashboard | nothing                                       | states, alerts, status    |
| pager     | nothing                                       | alerts (every ward, or one) |
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import sys
from pathlib import Path

from monitor.clinical.thresholds import NAME
from monitor.ingest.route import INBOUND

ROLES = ("device", "gateway", "ehr", "daemon", "dashboard", "pager")
DEVICE_KINDS = ("vitals", "fhir", "hl7", "device")
EHR_KINDS = ("admit", "discharge", "care")
PBKDF2_ITERATIONS = 10_000


class BrokerError(Exception):
    """A mistake on the command line: one line, exit 2."""


def acl_lines(role: str, prefix: str, ward: str = "+", bed: str = "+") -> list[str]:
    """The ACL lines (after `user NAME`) of a role."""
    p = prefix
    if role == "device":
        return [f"topic write {p}/{ward}/{bed}/{k}" for k in DEVICE_KINDS]
    if role == "gateway":
        return [f"topic write {p}/{ward}/+/{k}" for k in DEVICE_KINDS]
    if role == "ehr":
        return [f"topic write {p}/{ward}/+/{k}" for k in EHR_KINDS]
    if role == "daemon":
        return [f"topic read {p}/{ward}/+/{k}" for k in INBOUND] + [
            f"topic write {p}/{ward}/+/state",
            f"topic write {p}/{ward}/alerts",
            f"topic write {p}/_daemon/alerts",
            f"topic write {p}/rejected",
            f"topic write {p}/_daemon/status",
        ]
    if role == "dashboard":
        return [
            f"topic read {p}/{ward}/+/state",
            f"topic read {p}/{ward}/alerts",
            f"topic read {p}/_daemon/alerts",
            f"topic read {p}/_daemon/status",
        ]
    if role == "pager":
        return [f"topic read {p}/{ward}/alerts", f"topic read {p}/_daemon/alerts"]
    raise BrokerError(f"unknown role {role!r} (one of {', '.join(ROLES)})")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """An entry of Mosquitto 2's password file (what `mosquitto_passwd` writes)."""
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def upsert_password(path: Path, user: str, password: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [line for line in lines if line.split(":", 1)[0] != user]
    lines.append(f"{user}:{password_hash(password)}")
    _write_private(path, "\n".join(lines) + "\n")


def upsert_acl(path: Path, user: str, block: list[str], comment: str) -> None:
    """Replace the block of `user` (from its `user` line to the next blank line, `user`
    or `pattern` line), or append one; the rest of the file is kept as it is."""
    lines = path.read_text().splitlines() if path.exists() else []
    out, skipping = [], False
    for line in lines:
        word = line.split()
        if word[:1] == ["user"]:
            skipping = word[1:2] == [user]
            if skipping and out and out[-1].startswith("# crswatch:"):
                out.pop()  # its comment goes with it
        elif not word or word[0] == "pattern":
            skipping = False
        if not skipping and not (not word and out and not out[-1].strip()):
            out.append(line)  # (never two blank lines in a row)
    while out and not out[-1].strip():
        out.pop()
    out += [""] if out else []
    out += [f"# crswatch: {comment}", f"user {user}", *block]
    _write_private(path, "\n".join(out) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Written whole then renamed (a reload never sees half a file), readable by the
    owner only (Mosquitto reads it as its own user: chown it; see deploy/mosquitto)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def add(
    name: str,
    role: str,
    password: str,
    *,
    passwd_file: Path,
    acl_file: Path,
    prefix: str,
    ward: str | None = None,
    bed: str | None = None,
) -> list[str]:
    """Create (or reset) broker user `name` with `role`; returns its ACL lines."""
    if not name or any(c in name for c in ":+#/ \t\n") or name.startswith("$"):
        raise BrokerError(f"user name {name!r}: no ':', '+', '#', '/', spaces, or leading '$'")
    if role in ("device", "gateway") and not ward:
        raise BrokerError(f"a {role} needs --ward")
    if role == "device" and not bed:
        raise BrokerError("a device needs --bed")
    if role not in ("device",) and bed:
        raise BrokerError("--bed is for a device only")
    for what, value in (("ward", ward), ("bed", bed)):
        if value is not None and not NAME.match(value):
            raise BrokerError(f"--{what} {value!r}: 1-32 of A-Z a-z 0-9 _ -")
    if len(password) < 12:
        raise BrokerError("password: at least 12 characters")
    block = acl_lines(role, prefix, ward or "+", bed or "+")
    where = "/".join(x for x in (ward, bed) if x) or "every ward"
    upsert_password(passwd_file, name, password)
    upsert_acl(acl_file, name, block, f"{role} {where}")
    return block


def run(args) -> int:
    """The `broker add` command line."""
    from monitor import config

    try:
        prefix = config.load(args.config).prefix if Path(args.config).exists() else "crs"
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for broker user {args.name}: ")
        block = add(
            args.name,
            args.role,
            password,
            passwd_file=Path(args.passwd_file),
            acl_file=Path(args.acl_file),
            prefix=prefix,
            ward=args.ward,
            bed=args.bed,
        )
    except (BrokerError, OSError) as e:
        print(f"crswatch: broker add: {e}", file=sys.stderr)
        return 2
    print(f"broker user {args.name} ({args.role}): {len(block)} ACL lines in {args.acl_file}")
    print("reload Mosquitto to apply: systemctl reload mosquitto (or kill -HUP its pid)")
    return 0


def add_arguments(sub) -> None:
    b = sub.add_parser("broker", help="broker accounts and ACL (deploy/mosquitto/)")
    b_sub = b.add_subparsers(dest="broker_command", required=True, parser_class=type(b))
    a = b_sub.add_parser("add", help="add (or reset) a device, bed gateway or service account")
    a.add_argument("name", help="the broker user name (also its MQTT client id)")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--ward", help="the ward (device, gateway; optional for the others)")
    a.add_argument("--bed", help="the bed (device)")
    a.add_argument("--config", default="config.toml", help="for mqtt.topic_prefix")
    a.add_argument("--passwd-file", default="/etc/mosquitto/crswatch/passwd")
    a.add_argument("--acl-file", default="/etc/mosquitto/crswatch/acl")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
