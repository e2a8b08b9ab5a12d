"""Logging in and out: `/api/login`, `/api/logout`, `/api/me`.

A login passes, in order (guard/throttle.py explains each):
1. the login CSRF checks: `application/json`, a same-site Origin, the login form's token;
2. a place among the logins in progress (else 503 `busy`, at once);
3. the address's throttle (429 `throttled` with Retry-After, no password checked);
4. the account's lock: one login per account at a time; the lock-out and the throttle
   are checked again under it;
5. the password check (argon2, in the login pool). ACCOUNT_MAX_FAILURES wrong passwords
   in a row lock the account for LOCKOUT_S (423, even with the right password). Unknown
   names are counted the same way, in memory, and cost the same (a dummy hash), so the
   answers do not tell which names exist. A disabled account answers as a wrong password.

Failed, throttled and locked logins go to the per-minute refusal summary (guard/refusals.py); a
lock-out itself and every login are audited one by one.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from monitor.clock import iso
from monitor.ops.http import error
from monitor.store.accounts import HASHER, MAX_PASSWORD
from monitor.store.reads import login_row
from monitor.store.writes import count_failed_login, end_session, start_session

from .auth import COOKIE, LOGIN_COOKIE, PERMISSIONS, current, origin_ok, same, token_hash
from .core import ApiError, body, dash, json
from .guard.throttle import Busy

ACCOUNT_MAX_FAILURES = 20
LOCKOUT_S = 15 * 60
MAX_UNKNOWN = 10_000  # unknown names remembered
_DUMMY_HASH = HASHER.hash(secrets.token_hex(16))


def _lock_message(until: float, now: float) -> str:
    minutes = max(1, round((until - now) / 60))
    return (
        f"too many failed logins: this account is locked for {minutes} more "
        f"minute{'s' if minutes != 1 else ''}"
    )


def _check_login_csrf(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the login as application/json")
    if not origin_ok(request):
        dash(request).refused(request, "origin")
        raise ApiError(403, "origin", "login from another site refused")
    form_token = request.cookies.get(LOGIN_COOKIE)
    if form_token is not None:
        sent = request.headers.get("X-CSRF-Token", "")
        if not same(sent, form_token):
            dash(request).refused(request, "csrf")
            raise ApiError(
                403, "csrf", "the login form's token is missing or wrong; reload the login page"
            )


def _throttled(request: web.Request, wait: float, name: str) -> web.Response:
    dash(request).refused(request, "login_throttled", name)
    seconds = max(1, int(wait + 0.999))
    resp = error(
        429,
        "throttled",
        f"too many failed logins from this address: try again in {seconds} s",
    )
    resp.headers["Retry-After"] = str(seconds)
    return resp


async def login(request: web.Request) -> web.Response:
    _check_login_csrf(request)
    data = await body(request)
    name, password = data.get("username"), data.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name:
        raise ApiError(400, "bad_request", "username and password (strings) are needed")
    if len(name) > 64 or len(password) > MAX_PASSWORD:
        raise ApiError(400, "bad_request", "user name or password too long")
    d = dash(request)
    source = request.remote or "?"
    try:
        async with d.gate.admitted():
            wait = d.gate.sources.wait_s(source, d.wall_now())
            if wait:
                return _throttled(request, wait, name)
            async with d.gate.account(name):
                return await _login(request, name, password, source)
    except Busy:
        d.refused(request, "login_busy", name)
        resp = error(503, "busy", "too many logins at once: try again in a few seconds")
        resp.headers["Retry-After"] = "2"
        return resp


async def _login(request: web.Request, name: str, password: str, source: str) -> web.Response:
    d = dash(request)
    gate = d.gate
    now = d.wall_now()
    wait = gate.sources.wait_s(source, now)  # again: other logins of this address ended
    if wait:
        return _throttled(request, wait, name)
    row = login_row(d.db, name)
    unknown = d.unknown_failures  # name -> (failures, locked_until), in memory
    if row is None:
        failures, until = unknown.get(name, (0, 0.0))
    else:
        failures, until = 0, row["locked_until"] or 0.0
    if until > now:
        d.refused(request, "login_locked", name)
        return error(423, "locked", _lock_message(until, now))
    gate.sources.begin(source, now)
    ok = False
    try:
        ok = await gate.verify(row["password_hash"] if row else _DUMMY_HASH, password)
        ok = ok and row is not None and not row["disabled"]
    finally:
        gate.sources.end(source, d.wall_now(), failed=not ok)
    if not ok:
        d.refused(request, "login_failed", name)
        if row is None:
            failures += 1
            if len(unknown) > MAX_UNKNOWN:
                unknown.clear()
            locked = now + LOCKOUT_S if failures >= ACCOUNT_MAX_FAILURES else None
            unknown[name] = (0, locked) if locked else (failures, 0.0)
        else:
            failures, locked = await d.port.write(
                count_failed_login, name, now, ACCOUNT_MAX_FAILURES, LOCKOUT_S
            )
            if locked:
                await d.audit(
                    "user.locked",
                    "system",
                    {"username": name, "failures": failures, "last_source": source},
                )
        if locked:
            return error(423, "locked", _lock_message(locked, now))
        return error(401, "bad_credentials", "wrong user name or password")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + d.session_max_s
    session = {
        "token_hash": token_hash(token),
        "username": name,
        "created_ts": now,
        "expires_ts": expires,
        "csrf": csrf,
        "kind": "session",
    }
    new_hash = None
    if HASHER.check_needs_rehash(row["password_hash"]):
        new_hash = await gate.run(HASHER.hash, password)
    await d.port.write(start_session, session, new_hash, now)
    d.last_seen[session["token_hash"]] = now
    await d.audit("user.login", name, {"via": "api", "source": source})
    resp = json(
        {
            "token": token,
            "csrf": csrf,
            "user": {"name": name, "role": row["role"]},
            "expires": iso(expires),
        }
    )
    resp.set_cookie(
        COOKIE,
        token,
        max_age=int(d.session_max_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or d.public_url.startswith("https:"),
    )
    resp.del_cookie(LOGIN_COOKIE, path="/")
    return resp


async def logout(request: web.Request) -> web.Response:
    user = current(request)
    d = dash(request)
    await d.port.write(end_session, user.token_hash)
    await d.end_sessions(token_hash=user.token_hash, why="logged out")
    await d.audit("user.logout", user.name, {"via": user.via})
    resp = json({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def me(request: web.Request) -> web.Response:
    user = current(request)
    return json(
        {
            "name": user.name,
            "role": user.role,
            "via": user.via,
            "permissions": sorted(PERMISSIONS.get(user.role, ())),
        }
    )


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/login", login)
    router.add_post("/api/logout", logout)
    router.add_get("/api/me", me)
