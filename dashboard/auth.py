"""Who is asking: sessions, bearer tokens, CSRF, roles. (Logging in and out: login.py.)

* A login creates a random token (32 bytes); only its SHA-256 is stored (`sessions`), with
  a CSRF token and an expiry (`http.session_max_s`). The token comes back in the JSON
  answer (for API clients: `Authorization: Bearer <token>`) and as the `crswatch_session`
  cookie (HttpOnly, SameSite=Strict, Secure over https, a trusted proxy's included).
* A session ends when unused for `http.session_idle_s` (an open live page counts as use),
  at logout, and when its account changes (password, role, disabled): then its live
  pages are closed at once.
* With the cookie, every state-changing request (not GET/HEAD/OPTIONS) must carry
  `X-CSRF-Token` equal to the session's CSRF token (the pages get it in a <meta>). With a
  bearer token no CSRF token is needed: a browser never adds that header by itself.
* Roles: an admin manages accounts and sees no patient data (`view`).
* Every header is compared as bytes: a non-ASCII token is a refusal, never an error.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from monitor.ops.http import error
from monitor.store.reads import session_row

from .core import ApiError, dash

COOKIE = "crswatch_session"
LOGIN_COOKIE = "crswatch_login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PERMISSIONS = {
    "nurse": frozenset({"view", "ack", "care"}),
    "physician": frozenset({"view", "ack", "care", "override"}),
    "admin": frozenset({"users"}),  # accounts only: no patient data
}
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/login", "/api/login", "/favicon.ico"})
# what an account without `view` may still reach (its own session, the accounts)
NO_VIEW_PATHS = frozenset({"/api/me", "/api/logout", "/api/meta", "/users", "/api/users"})


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


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def token_hash(token: str) -> str:
    return hashlib.sha256(as_bytes(token)).hexdigest()


def same(sent: str, expected: str) -> bool:
    """Constant-time, for any header text (hmac.compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(as_bytes(sent), as_bytes(expected))


def is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/api" or path == "/ws"


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def origin_ok(request: web.Request) -> bool:
    """No Origin (not a browser's cross-site request), or this server's own: as the
    request reached it (the scheme a trusted proxy reports) or `http.public_url`."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    public = dash(request).public_url
    return origin == own_origin(request) or (bool(public) and origin == public)


def credentials(request: web.Request) -> tuple[str, str] | None:
    """(token, "bearer" | "cookie") a request carries, or None."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token, via = header[7:].strip(), "bearer"
    else:
        token, via = request.cookies.get(COOKIE, ""), "cookie"
    if not token or len(token) > 256:
        return None
    return token, via


def authenticate(request: web.Request) -> User | None:
    found = credentials(request)
    if found is None:
        return None
    token, via = found
    d = dash(request)
    return session_user(d, token_hash(token), via)


def session_user(d, th: str, via: str, touch: bool = True) -> User | None:
    """The user of a live session, or None (unknown, expired, idle too long, disabled,
    or made before its account last changed)."""
    row = session_row(d.db, th)
    now = d.wall_now()  # sessions live in wall time, even under the demo's fast clock
    if row is None or row["expires_ts"] <= now or row["disabled"]:
        return None
    if row["changed_ts"] is not None and row["created_ts"] < row["changed_ts"]:
        return None
    seen = d.last_seen.get(th, max(row["created_ts"], d.started))
    if now - seen > d.session_idle_s:
        d.last_seen.pop(th, None)
        return None
    if touch:
        d.last_seen[th] = now
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


def needs_view(path: str) -> bool:
    return path not in NO_VIEW_PATHS and not path.startswith("/api/users/")


@web.middleware
async def middleware(request: web.Request, handler):
    if _open(request.path):
        return await handler(request)
    user = authenticate(request)
    d = dash(request)
    if user is None:
        if is_api(request.path):
            d.refused(request, "unauthenticated")
            return error(
                401,
                "unauthenticated",
                "log in first (session cookie or Authorization: Bearer token)",
            )
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")
    if user.via == "cookie" and request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not same(sent, user.csrf):
            d.refused(request, "csrf", user.name)
            return error(
                403, "csrf", "missing or wrong X-CSRF-Token header (needed with the session cookie)"
            )
    request[USER] = user
    if not user.can("view") and needs_view(request.path):
        if request.path == "/":
            raise web.HTTPFound("/users")
        raise ApiError(403, "forbidden", f"a {user.role} account does not see patient data")
    return await handler(request)
