"""Accounts, for admins: list and create. (`python main.py user add` does the same from a
shell, and also resets a password.)"""

from __future__ import annotations

import asyncio

from aiohttp import web

from monitor.store.accounts import UserError, check, hash_password, put_user

from .auth import require
from .core import ApiError, body, dash, json


async def list_users(request: web.Request) -> web.Response:
    require(request, "users")
    d = dash(request)
    now = d.now()
    rows = d.db.execute(
        "SELECT username, role, created_ts, locked_until, disabled FROM users ORDER BY username"
    )
    return json(
        [
            {
                "username": r["username"],
                "role": r["role"],
                "created_ts": r["created_ts"],
                "locked": bool(r["locked_until"] and r["locked_until"] > now),
                "disabled": bool(r["disabled"]),
            }
            for r in rows
        ]
    )


async def create_user(request: web.Request) -> web.Response:
    admin = require(request, "users")
    data = await body(request)
    name, role, password = data.get("username"), data.get("role"), data.get("password")
    if not all(isinstance(v, str) for v in (name, role, password)):
        raise ApiError(422, "invalid", "username, role and password (strings) are needed")
    try:
        check(name, role, password)
    except UserError as e:
        raise ApiError(422, "invalid", str(e)) from None
    d = dash(request)
    password_hash = await asyncio.to_thread(hash_password, password)
    now = d.now()

    def create(conn):
        if conn.execute("SELECT 1 FROM users WHERE username=?", (name,)).fetchone():
            return None
        return put_user(conn, name, role, password_hash, now)

    if await d.daemon.store.transact(create) is None:
        raise ApiError(409, "exists", f"user {name!r} exists already")
    await d.audit("user.created", admin.name, {"username": name, "role": role})
    return json({"username": name, "role": role, "created_ts": now}, status=201)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/users", list_users)
    router.add_post("/api/users", create_user)
