"""Accounts, for admins: list, create, and change one (`python main.py user add|disable|
enable|revoke` does the same from a shell).

Every change that must log someone out (a new password, a new role, disabled, sessions
revoked) deletes that user's sessions and closes its live pages at once; every change is
audited with the admin as its actor.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from monitor.store import accounts
from monitor.store.accounts import ROLES, UserError, check, check_password, hash_password
from monitor.store.reads import account_rows

from .auth import require
from .core import ApiError, body, dash, json


async def list_users(request: web.Request) -> web.Response:
    require(request, "users")
    d = dash(request)
    now = d.wall_now()
    rows = account_rows(d.db)
    live: dict[str, int] = {}
    for user in d.sockets.values():
        live[user.name] = live.get(user.name, 0) + 1
    return json(
        [
            {
                "username": r["username"],
                "role": r["role"],
                "created_ts": r["created_ts"],
                "locked": bool(r["locked_until"] and r["locked_until"] > now),
                "disabled": bool(r["disabled"]),
                "live_pages": live.get(r["username"], 0),
            }
            for r in rows
        ]
    )


def _strings(data: dict, *keys: str) -> list[str]:
    values = [data.get(k) for k in keys]
    if not all(isinstance(v, str) for v in values):
        raise ApiError(422, "invalid", f"{', '.join(keys)} (strings) are needed")
    return values  # type: ignore[return-value]


async def create_user(request: web.Request) -> web.Response:
    admin = require(request, "users")
    name, role, password = _strings(await body(request), "username", "role", "password")
    try:
        check(name, role, password)
    except UserError as e:
        raise ApiError(422, "invalid", str(e)) from None
    d = dash(request)
    password_hash = await asyncio.to_thread(hash_password, password)
    now = d.wall_now()

    def create(conn):
        if accounts.role_of(conn, name) is not None:
            return None
        return accounts.put_user(conn, name, role, password_hash, now)

    if await d.port.write(create) is None:
        raise ApiError(409, "exists", f"user {name!r} exists already")
    await d.audit("user.created", admin.name, {"username": name, "role": role})
    return json({"username": name, "role": role, "created_ts": now}, status=201)


async def change_user(request: web.Request) -> web.Response:
    """POST /api/users/{name}/{action}: disable, enable, revoke, role {"role"},
    password {"password"}."""
    admin = require(request, "users")
    name, action = request.match_info["name"], request.match_info["action"]
    d = dash(request)
    now = d.wall_now()
    detail: dict = {"username": name}
    if action in ("role", "password"):
        data = await body(request)
    if action == "role":
        (role,) = _strings(data, "role")
        if role not in ROLES:
            raise ApiError(422, "invalid", f"role must be one of {', '.join(ROLES)}")
        if name == admin.name and role != "admin":
            raise ApiError(409, "not_allowed", "an admin cannot take away its own admin role")
        before = await d.port.write(accounts.set_role, name, role, now)
        found, event = before is not None, "user.role_changed"
        detail |= {"role": role, "previous_role": before}
    elif action == "password":
        (password,) = _strings(data, "password")
        try:
            check_password(name, password)
        except UserError as e:
            raise ApiError(422, "invalid", str(e)) from None
        password_hash = await asyncio.to_thread(hash_password, password)
        found = await d.port.write(accounts.set_password, name, password_hash, now)
        event = "user.password_reset"
    elif action in ("disable", "enable"):
        if name == admin.name and action == "disable":
            raise ApiError(409, "not_allowed", "an admin cannot disable its own account")
        found = await d.port.write(accounts.set_disabled, name, action == "disable", now)
        event = f"user.{action}d"
    elif action == "revoke":
        n = await d.port.write(accounts.end_sessions, name)
        found = accounts.role_of(d.db, name) is not None
        event, detail["sessions"] = "user.sessions_revoked", n
    else:
        raise ApiError(404, "not_found", f"no account action {action!r}")
    if not found:
        raise ApiError(404, "not_found", f"no user {name!r}")
    closed = 0
    if action != "enable":
        closed = await d.end_sessions(username=name, why=event)
    await d.audit(event, admin.name, {**detail, "live_pages_closed": closed})
    return json({**detail, "event": event, "live_pages_closed": closed})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/users", list_users)
    router.add_post("/api/users", create_user)
    router.add_post("/api/users/{name}/{action}", change_user)
