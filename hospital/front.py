"""The hospital's one dashboard: an HTTP front before the daemons that split it by ward.

A user logs in once, at the front; the front logs in on every daemon with the same name and
password (the account must exist on each: `main.py user add` per daemon config, or the
accounts page here, which creates it on all) and keeps each daemon's bearer token in its
own session (in memory: a restart of the front logs everyone out). Then:

* pages, scripts, `/api/me`, `/api/meta`, `/api/forecast`: the first daemon (the pages
  are the same on every daemon);
* `/api/beds`, `/api/wards`, `/api/alerts`: every daemon, merged (`?ward=`: its owner);
* `/api/beds/{ward}/...` (care entered at a bed): the daemon that owns the ward;
* `/api/alerts/{id}...`, `/api/patients/{id}...`: the daemon that knows the id (asked
  of all; alert ids are UUIDs, patient ids the hospital's);
* `/api/users...`: a change goes to every daemon (accounts stay alike), a read to the first;
* `/ws`: one feed merged from every daemon's (feed.py);
* `/healthz`: 200 only when every daemon answers 200.

The daemons check what they always check: the Host header and the Origin (both forwarded
as the browser sent them), the login form's token, roles, sessions, throttles (each sees
the user's address in X-Forwarded-For: the daemons trust the front, hospital/config.py
checks it). The front checks the session's CSRF token itself and talks to the daemons with
bearer tokens. A daemon that does not answer is said so: 502 `daemon_unreachable` naming
its wards, and in the live feed a tier-3 notice (its beds are not shown).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from dashboard.auth import COOKIE, LOGIN_COOKIE, SAFE_METHODS, credentials, same
from dashboard.core import severity_key
from dashboard.guard import proxy
from monitor.ingest.messages import Rejected
from monitor.ingest.validate import parse_ts
from monitor.ops.http import error

from .config import Daemon, Hospital

log = logging.getLogger("crswatch.hospital")

FRONT = web.AppKey("front", object)
TIMEOUT_S = 30.0  # a change (a care entry waits up to 15 s for the daemon's store)
READ_TIMEOUT_S = 10.0  # a read: a frozen daemon is said so within 10 s
MAX_BODY = 1024 * 1024
MAX_SESSIONS = 10_000
OWNERS_KEPT = 50_000  # alert and patient ids whose daemon is remembered
HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "upgrade",
        "date",
        "server",
    }
)
CARE = re.compile(r"^/api/beds/([^/]+)/[^/]+/")
BY_ID = re.compile(r"^/api/(alerts|patients)/([^/]+)(/.*)?$")
MERGED = ("/api/beds", "/api/wards", "/api/alerts")


class Unreachable(Exception):
    def __init__(self, daemon: Daemon, why: str):
        super().__init__(f"{daemon.name}: {why}")
        self.daemon = daemon


@dataclass
class Session:
    name: str
    role: str
    csrf: str  # the first daemon's: its pages carry it
    tokens: dict[str, str]  # daemon name -> its bearer token
    expires: float


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self):
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def response(self) -> web.Response:
        resp = web.Response(status=self.status, body=self.body)
        for k, v in self.headers:
            if k.lower() in HOP:
                continue
            if k.lower() == "set-cookie" and v.startswith(f"{COOKIE}="):
                continue  # the daemon's session cookie: the browser holds the front's
            if k.lower() == "content-type":
                resp.headers["Content-Type"] = v
            else:
                resp.headers.add(k, v)
        return resp


def hashed(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


DAEMON_WARD = "_daemon"  # a daemon's own health alerts: ward and bed "_daemon"


def tag(alert: dict, d: Daemon) -> dict:
    """A daemon's own alert names that daemon (its bed), so that two daemons' full disks
    are told apart on the hospital's page."""
    if isinstance(alert, dict) and alert.get("ward") == DAEMON_WARD:
        alert["bed"] = d.name
    return alert


def tagged(answer: Answer, d: Daemon, kind: str) -> Answer:
    """Daemon d's answer about one `kind` ("alerts", "patients"): its own alert named (tag)."""
    if kind != "alerts":
        return answer
    body = answer.json() if answer.status < 300 else None
    if not isinstance(body, dict) or body.get("ward") != DAEMON_WARD:
        return answer
    return Answer(answer.status, answer.headers, orjson.dumps(tag(body, d)))


def unreachable_text(d: Daemon) -> str:
    wards = ", ".join(d.wards)
    return f"CRSWatch for ward(s) {wards} ({d.name}) does not answer"


def unreachable(e: Unreachable) -> web.Response:
    return error(502, "daemon_unreachable", f"{unreachable_text(e.daemon)}: {e}")


@dataclass
class Front:
    hospital: Hospital
    client: aiohttp.ClientSession
    sessions: dict[str, Session] = field(default_factory=dict)  # sha256(token) -> session
    owners: OrderedDict[str, str] = field(default_factory=OrderedDict)  # id -> daemon name
    background: set[asyncio.Task] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.trusted = proxy.networks(list(self.hospital.trusted_proxies))

    @property
    def daemons(self) -> tuple[Daemon, ...]:
        return self.hospital.daemons

    def daemon(self, name: str) -> Daemon:
        return next(d for d in self.daemons if d.name == name)

    # -- who is asking ------------------------------------------------------------------

    def session_of(self, request: web.Request) -> Session | None:
        found = credentials(request)
        s = self.sessions.get(hashed(found[0])) if found else None
        return s if s is not None and s.expires > time.time() else None

    def end(self, request: web.Request) -> Session | None:
        """The request's session, ended here."""
        found = credentials(request)
        return self.sessions.pop(hashed(found[0]), None) if found else None

    def forget(self, request: web.Request) -> None:
        """The session ended on a daemon: end it here and on the others."""
        s = self.end(request)
        if s is not None:
            task = asyncio.create_task(self._logout_all(s, request))
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _logout_all(self, s: Session, request: web.Request) -> None:
        for d in self.daemons:
            with contextlib.suppress(Unreachable):
                await self.call(d, request, "POST", "/api/logout", s, b"")

    # -- talking to a daemon ------------------------------------------------------------

    def headers(self, request: web.Request, session: Session | None, d: Daemon) -> dict:
        """What a daemon is told: the browser's Host, Origin, content type and login
        form token, the client's address and scheme, and this daemon's bearer token."""
        peer = request.remote
        client = proxy.client_of(peer, request.headers.get("X-Forwarded-For", ""), self.trusted)
        scheme = request.scheme
        if proxy.is_trusted(peer, self.trusted):  # the scheme the TLS proxy before us saw
            sent = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            scheme = sent if sent in ("http", "https") else scheme
        out = {"Host": request.host, "X-Forwarded-For": client, "X-Forwarded-Proto": scheme}
        for name in ("Origin", "Content-Type", "Accept", "X-CSRF-Token"):
            if name in request.headers:
                out[name] = request.headers[name]
        if LOGIN_COOKIE in request.cookies:
            out["Cookie"] = f"{LOGIN_COOKIE}={request.cookies[LOGIN_COOKIE]}"
        if session is not None:
            out["Authorization"] = f"Bearer {session.tokens[d.name]}"
            out.pop("X-CSRF-Token", None)  # checked here; a bearer token needs none
        return out

    async def call(
        self,
        d: Daemon,
        request: web.Request,
        method: str,
        path_qs: str,
        session: Session | None,
        body: bytes,
    ) -> Answer:
        try:
            async with self.client.request(
                method,
                d.url + path_qs,
                headers=self.headers(request, session, d),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=READ_TIMEOUT_S if method in SAFE_METHODS else TIMEOUT_S
                ),
            ) as resp:
                data = await resp.read()
                return Answer(resp.status, list(resp.headers.items()), data)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise Unreachable(d, f"{type(e).__name__}: {e}"[:200]) from None

    async def each(self, request, method, path_qs, session, body) -> list[Answer]:
        return await asyncio.gather(
            *(self.call(d, request, method, path_qs, session, body) for d in self.daemons)
        )

    def remember(self, key: str, d: Daemon) -> None:
        self.owners[key] = d.name
        self.owners.move_to_end(key)
        while len(self.owners) > OWNERS_KEPT:
            self.owners.popitem(last=False)

    async def owner_of(self, request, kind: str, ident: str, session) -> Daemon | None:
        """The daemon that knows alert or patient `ident` (remembered, else asked)."""
        key = f"{kind}/{ident}"
        if key in self.owners:
            return self.daemon(self.owners[key])
        path = f"/api/{kind}/{quote(ident, safe='')}"
        answers = await self.each(request, "GET", path, session, b"")
        for d, a in zip(self.daemons, answers, strict=True):
            if a.status == 200:
                self.remember(key, d)
                return d
        return None


# -- the routes ---------------------------------------------------------------------------


def front(request: web.Request) -> Front:
    return request.app[FRONT]  # type: ignore[return-value]


async def handle(request: web.Request) -> web.StreamResponse:
    f = front(request)
    body = await request.read() if request.can_read_body else b""
    if len(body) > MAX_BODY:
        return error(413, "too_large", "request body too large")
    path = request.path
    try:
        if path == "/healthz":
            return await healthz(f, request)
        if path == "/api/login" and request.method == "POST":
            return await login(f, request, body)
        session = f.session_of(request)
        if session is None:  # the first daemon refuses it as it would refuse it alone
            return (
                await f.call(f.daemons[0], request, request.method, request.path_qs, None, body)
            ).response()
        _, via = credentials(request) or ("", "")
        if via == "cookie" and request.method not in SAFE_METHODS:
            sent = request.headers.get("X-CSRF-Token", "")
            if not sent or not same(sent, session.csrf):
                return error(
                    403,
                    "csrf",
                    "missing or wrong X-CSRF-Token header (needed with the session cookie)",
                )
        if path == "/api/logout" and request.method == "POST":
            return await logout(f, request, session)
        answer = await route(f, request, session, body)
    except Unreachable as e:
        log.warning("%s", e)
        return unreachable(e)
    if answer.status == 401:
        f.forget(request)
    return answer.response()


async def route(f: Front, request: web.Request, session: Session, body: bytes) -> Answer:
    path, method, pq = request.path, request.method, request.path_qs
    if m := CARE.match(path):
        d = f.hospital.owner(m.group(1))
        if d is None:
            return _answer(404, "not_found", f"no CRSWatch daemon serves ward {m.group(1)!r}")
        return await f.call(d, request, method, pq, session, body)
    if m := BY_ID.match(path):
        kind, ident = m.group(1), m.group(2)
        if kind == "alerts" and ident.startswith("hospital:"):  # feed.py's notice
            return _answer(
                409,
                "front_notice",
                f"this notice is the hospital dashboard's own: it goes by itself when "
                f"{ident.partition(':')[2]} answers again",
            )
        if method == "GET" and not m.group(3):
            return await _first_found(f, request, session, kind, ident)
        d = await f.owner_of(request, kind, ident, session)
        if d is None:
            return _answer(404, "not_found", f"no {kind[:-1]} {ident!r} on any daemon")
        answer = await f.call(d, request, method, pq, session, body)
        return tagged(answer, d, kind)
    if path in MERGED and method == "GET":
        ward = request.query.get("ward")
        if ward:
            d = f.hospital.owner(ward)
            if d is None:
                return Answer(200, [("Content-Type", "application/json")], b"[]")
            return await f.call(d, request, method, pq, session, body)
        answers = await f.each(request, method, pq, session, body)
        return merge(path, request, answers, f.daemons)
    if path.startswith("/api/users") and method not in SAFE_METHODS:
        answers = await f.each(request, method, pq, session, body)
        differ = [
            d.name for d, a in zip(f.daemons, answers, strict=True) if a.status != answers[0].status
        ]
        if differ:
            log.error(
                "accounts out of step: %s answered otherwise than %s", differ, f.daemons[0].name
            )
            return _answer(
                502,
                "accounts_out_of_step",
                f"the change was applied unevenly: {', '.join(differ)} answered otherwise "
                f"than {f.daemons[0].name}; check the accounts page of each",
            )
        return answers[0]
    return await f.call(f.daemons[0], request, method, pq, session, body)


def _answer(status: int, code: str, message: str) -> Answer:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Answer(status, [("Content-Type", "application/json")], body)


async def _first_found(f, request, session, kind, ident) -> Answer:
    key = f"{kind}/{ident}"
    if key in f.owners:
        d = f.daemon(f.owners[key])
        a = await f.call(d, request, "GET", request.path_qs, session, b"")
        if a.status != 404:
            return tagged(a, d, kind)
    answers = await f.each(request, "GET", request.path_qs, session, b"")
    for d, a in zip(f.daemons, answers, strict=True):
        if a.status != 404:
            if a.status == 200:
                f.remember(key, d)
            return tagged(a, d, kind)
    return answers[0]


def merge(path: str, request: web.Request, answers: list[Answer], daemons) -> Answer:
    bad = next((a for a in answers if a.status != 200), None)
    if bad is not None:
        return bad
    lists = [a.json() or [] for a in answers]
    if path == "/api/alerts":
        lists = [[tag(a, d) for a in part] for part, d in zip(lists, daemons, strict=True)]
    if path == "/api/wards":
        out: list = sorted({w for part in lists for w in part})
    elif path == "/api/beds":
        out = sorted((b for part in lists for b in part), key=severity_key)
    else:
        out = [a for part in lists for a in part]
        if request.query.get("state", "active") == "active":
            out.sort(key=lambda a: (-(a.get("tier") or 0), a.get("raised_ts") or 0))
        else:
            out.sort(key=lambda a: -(a.get("resolved_ts") or a.get("ts") or 0))
        with contextlib.suppress(ValueError):
            out = out[: max(1, min(int(request.query.get("limit", "200")), 1000))]
    return Answer(200, [("Content-Type", "application/json")], orjson.dumps(out))


async def login(f: Front, request: web.Request, body: bytes) -> web.StreamResponse:
    answers = await asyncio.gather(
        *(f.call(d, request, "POST", "/api/login", None, body) for d in f.daemons),
        return_exceptions=True,
    )
    ok = {
        d.name: a.json()
        for d, a in zip(f.daemons, answers, strict=True)
        if isinstance(a, Answer) and a.status == 200
    }
    first = answers[0]
    if len(ok) == len(f.daemons):
        now = time.time()
        if len(f.sessions) >= MAX_SESSIONS:
            for key in [k for k, s in f.sessions.items() if s.expires <= now]:
                del f.sessions[key]
        main = ok[f.daemons[0].name]
        token = secrets.token_urlsafe(32)
        expires = min(_epoch(v.get("expires")) for v in ok.values())
        f.sessions[hashed(token)] = Session(
            main["user"]["name"],
            main["user"]["role"],
            main["csrf"],
            {name: v["token"] for name, v in ok.items()},
            expires,
        )
        resp = web.json_response({**main, "token": token})
        resp.set_cookie(
            COOKIE,
            token,
            max_age=max(1, int(expires - now)),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure or f.hospital.public_url.startswith("https:"),
        )
        resp.del_cookie(LOGIN_COOKIE, path="/")
        return resp
    # not on every daemon: log out where it worked, and say why
    partial = Session("", "", "", {n: v["token"] for n, v in ok.items()}, 0.0)
    for d in f.daemons:
        if d.name in ok:
            with contextlib.suppress(Unreachable):
                await f.call(d, request, "POST", "/api/logout", partial, b"")
    down = next((a for a in answers if isinstance(a, Unreachable)), None)
    if down is not None:
        return unreachable(down)
    if isinstance(first, Answer) and first.status != 200:
        return first.response()  # wrong password, throttled, locked: as the daemon said
    names = ", ".join(d.name for d in f.daemons if d.name not in ok)
    log.error("login on %s only: refused by %s", f.daemons[0].name, names)
    return error(
        502,
        "login_incomplete",
        f"this account could not log in on every CRSWatch daemon (refused by {names}); "
        "an admin creates it there, or from this dashboard's accounts page",
    )


def _epoch(text) -> float:
    try:
        return parse_ts(text, "expires")  # the daemon's own ISO time
    except Rejected:
        return time.time() + 3600


async def logout(f: Front, request: web.Request, session: Session) -> web.StreamResponse:
    f.end(request)
    await asyncio.gather(
        *(f.call(d, request, "POST", "/api/logout", session, b"") for d in f.daemons),
        return_exceptions=True,
    )
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def healthz(f: Front, request: web.Request) -> web.Response:
    async def one(d: Daemon):
        try:
            a = await f.call(d, request, "GET", "/healthz", None, b"")
        except Unreachable as e:
            return {"status": "unreachable", "problems": [str(e)]}, False
        body = a.json() or {}
        return {
            "status": body.get("status", str(a.status)),
            "problems": body.get("problems", []),
        }, (a.status == 200)

    results = await asyncio.gather(*(one(d) for d in f.daemons))
    problems = [
        f"{d.name} ({', '.join(d.wards)}): {p}"
        for d, (r, _) in zip(f.daemons, results, strict=True)
        for p in r["problems"] or ([] if r["status"] == "ok" else [r["status"]])
    ]
    healthy = all(ok for _, ok in results)
    return web.json_response(
        {
            "status": "ok" if healthy else "unavailable",
            "problems": problems,
            "daemons": {d.name: r for d, (r, _) in zip(f.daemons, results, strict=True)},
        },
        status=200 if healthy else 503,
    )
