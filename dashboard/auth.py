"""Who is asking: sessions, bearer tokens, CSRF, roles and the login lock-out.

* A login creates a random token (32 bytes); only its SHA-256 is stored (`sessions`), with
  a CSRF token and an expiry (`SESSION_S`). The token comes back in the JSON answer (for API
  clients: `Authorization: Bearer <token>`) and as the `crswatch_session` cookie (HttpOnly,
  SameSite=Strict, Secure when served over https).
* With the cookie, every state-changing request (not GET/HEAD/OPTIONS) must carry
  `X-CSRF-Token` equal to the session's CSRF token (the pages get it in a <meta>). With a
  bearer token no CSRF token is needed: a browser never adds that header by itself.
* The login form is protected too: GET /login sets a `crswatch_login` cookie and puts the
  same value in the page; a login that carries that cookie must echo it in X-CSRF-Token.
  Every login must be `application/json` (a cross-site form cannot send that) and an
  Origin header, when present, must be this server's.
* `MAX_FAILURES` wrong passwords in a row lock the account for `LOCKOUT_S` (423, even with
  the right password). Unknown names are counted the same way, in memory, so a lock-out
  does not tell which names exist; their password check costs the same (a dummy hash).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from monitor.clock import iso
from monitor.ops.http import error
from monitor.store.accounts import HASHER, verify_password

from .core import ApiError, body, dash, json

COOKIE = "crswatch_session"
LOGIN_COOKIE = "crswatch_login"
SESSION_S = 12 * 3600  # a shift and a half; then log in again
MAX_FAILURES = 5
LOCKOUT_S = 15 * 60
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PERMISSIONS = {
    "nurse": frozenset({"view", "ack", "care"}),
    "physician": frozenset({"view", "ack", "care", "override"}),
    "admin": frozenset({"view", "users"}),
}
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/login", "/api/login", "/favicon.ico"})
_DUMMY_HASH = HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    via: str  # "cookie" or "bearer"
    csrf: str
    token_hash: str

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, ())


USER = web.RequestKey("user", User)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/api" or path == "/ws"


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == own_origin(request)


def authenticate(request: web.Request) -> User | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token, via = header[7:].strip(), "bearer"
    else:
        token, via = request.cookies.get(COOKIE, ""), "cookie"
    if not token:
        return None
    d = dash(request)
    th = token_hash(token)
    row = d.db.execute(
        "SELECT s.username, s.csrf, s.expires_ts, u.role, u.disabled FROM sessions s "
        "JOIN users u ON u.username = s.username WHERE s.token_hash=?",
        (th,),
    ).fetchone()
    if row is None or row["expires_ts"] <= d.wall_now() or row["disabled"]:
        return None
    return User(row["username"], row["role"], via, row["csrf"], th)


def current(request: web.Request) -> User:
    return request[USER]


def require(request: web.Request, permission: str) -> User:
    user = request[USER]
    if not user.can(permission):
        raise ApiError(
            403,
            "forbidden",
            f"a {user.role} account may not do this (needs the {permission!r} permission)",
        )
    return user


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


@web.middleware
async def middleware(request: web.Request, handler):
    if _open(request.path):
        return await handler(request)
    user = authenticate(request)
    if user is None:
        if is_api(request.path):
            return error(
                401,
                "unauthenticated",
                "log in first (session cookie or Authorization: Bearer token)",
            )
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")
    if user.via == "cookie" and request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not hmac.compare_digest(sent, user.csrf):
            return error(
                403, "csrf", "missing or wrong X-CSRF-Token header (needed with the session cookie)"
            )
    request[USER] = user
    return await handler(request)


# -- login and logout -------------------------------------------------------------------
def _lock_message(until: float, now: float) -> str:
    minutes = max(1, round((until - now) / 60))
    return (
        f"too many failed logins: this account is locked for {minutes} more "
        f"minute{'s' if minutes != 1 else ''}"
    )


def _failed(conn, name: str, now: float) -> tuple[int, float | None]:
    """Count a failure (writer thread); (failures, locked_until or None)."""
    row = conn.execute("SELECT failed_logins FROM users WHERE username=?", (name,)).fetchone()
    failures = (row[0] or 0) + 1
    locked = now + LOCKOUT_S if failures >= MAX_FAILURES else None
    conn.execute(
        "UPDATE users SET failed_logins=?, locked_until=? WHERE username=?",
        (0 if locked else failures, locked, name),
    )
    return failures, locked


def _succeeded(conn, name: str, session: dict, new_hash: str | None, now: float) -> None:
    conn.execute("DELETE FROM sessions WHERE expires_ts < ?", (now,))
    conn.execute(
        "INSERT INTO sessions (token_hash, username, created_ts, expires_ts, csrf, "
        "kind) VALUES (:token_hash, :username, :created_ts, :expires_ts, :csrf, "
        ":kind)",
        session,
    )
    conn.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE username=?", (name,))
    if new_hash:
        conn.execute("UPDATE users SET password_hash=? WHERE username=?", (new_hash, name))


def _check_login_csrf(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the login as application/json")
    if not origin_ok(request):
        raise ApiError(403, "origin", "login from another site refused")
    form_token = request.cookies.get(LOGIN_COOKIE)
    if form_token is not None:
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent, form_token):
            raise ApiError(
                403, "csrf", "the login form's token is missing or wrong; reload the login page"
            )


async def login(request: web.Request) -> web.Response:
    _check_login_csrf(request)
    data = await body(request)
    name, password = data.get("username"), data.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name:
        raise ApiError(400, "bad_request", "username and password (strings) are needed")
    d = dash(request)
    now = d.wall_now()  # a session lasts a shift of wall time, even in the fast demo
    row = d.db.execute(
        "SELECT username, password_hash, role, locked_until, disabled FROM users WHERE username=?",
        (name,),
    ).fetchone()
    if row is None:
        unknown = d.unknown_failures  # name -> (failures, locked_until), in memory
        failures, until = unknown.get(name, (0, 0.0))
        if until > now:
            return error(423, "locked", _lock_message(until, now))
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
        failures += 1
        if len(unknown) > 10_000:
            unknown.clear()
        if failures >= MAX_FAILURES:
            unknown[name] = (0, now + LOCKOUT_S)
            return error(423, "locked", _lock_message(now + LOCKOUT_S, now))
        unknown[name] = (failures, 0.0)
        return error(401, "bad_credentials", "wrong user name or password")
    if row["locked_until"] and row["locked_until"] > now:
        await d.audit("user.login_refused", name, {"reason": "locked"})
        return error(423, "locked", _lock_message(row["locked_until"], now))
    ok = await asyncio.to_thread(verify_password, row["password_hash"], password)
    if not ok:
        failures, locked = await d.daemon.store.transact(_failed, name, now)
        await d.audit("user.login_failed", name, {"failures": failures, "locked": bool(locked)})
        if locked:
            return error(423, "locked", _lock_message(locked, now))
        return error(401, "bad_credentials", "wrong user name or password")
    if row["disabled"]:
        return error(401, "bad_credentials", "wrong user name or password")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session = {
        "token_hash": token_hash(token),
        "username": name,
        "created_ts": now,
        "expires_ts": now + SESSION_S,
        "csrf": csrf,
        "kind": "session",
    }
    new_hash = None
    if HASHER.check_needs_rehash(row["password_hash"]):
        new_hash = await asyncio.to_thread(HASHER.hash, password)
    await d.daemon.store.transact(_succeeded, name, session, new_hash, now)
    await d.audit("user.login", name, {"via": "api"})
    resp = json(
        {
            "token": token,
            "csrf": csrf,
            "user": {"name": name, "role": row["role"]},
            "expires": iso(now + SESSION_S),
        }
    )
    resp.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    resp.del_cookie(LOGIN_COOKIE, path="/")
    return resp


async def logout(request: web.Request) -> web.Response:
    user = current(request)
    d = dash(request)
    await d.daemon.store.transact(
        lambda conn: conn.execute("DELETE FROM sessions WHERE token_hash=?", (user.token_hash,))
    )
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
