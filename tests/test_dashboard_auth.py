"""Login, sessions, bearer tokens, CSRF, lock-out, roles and the error shape, against a
real daemon over real HTTP."""

from __future__ import annotations

import hashlib
import time

import aiohttp
from yarl import URL

from dashboard.login import ACCOUNT_MAX_FAILURES, LOCKOUT_S
from tests.support.dashboard import (
    PASSWORD,
    Client,
    is_error,
    login,
    make_user,
    new_session,
    url,
)
from tests.support.db import query


async def post_login(d, name, password, source=None, **kw):
    """A login; with `source`, as if through a trusted proxy from that address."""
    headers = kw.pop("headers", {})
    if source:
        headers["X-Forwarded-For"] = source
    async with aiohttp.ClientSession() as s:
        async with s.post(
            url(d, "/api/login"),
            json={"username": name, "password": password},
            headers=headers,
            **kw,
        ) as r:
            return r.status, await r.json(), r.cookies


PROXIED = {"http": {"port": 0, "trusted_proxies": ["127.0.0.1"]}}


async def test_login_gives_token_and_cookie_and_stores_only_a_hash(make_daemon):
    d = await make_daemon()
    make_user(d, "nina", "nurse")
    status, body, cookies = await post_login(d, "nina", PASSWORD)
    assert status == 200
    assert set(body) >= {"token", "csrf"} and body["user"] == {"name": "nina", "role": "nurse"}
    morsel = cookies["crswatch_session"]
    assert morsel.value == body["token"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and not morsel["secure"]
    assert int(morsel["max-age"]) > 3600
    rows = query(d.cfg["storage.path"], "SELECT token_hash, username, csrf FROM sessions")
    assert rows == [(hashlib.sha256(body["token"].encode()).hexdigest(), "nina", body["csrf"])]


async def test_wrong_password_and_unknown_user_are_401_in_the_error_shape(make_daemon):
    d = await make_daemon()
    make_user(d, "nina", "nurse")
    for name, password in (("nina", "wrong password"), ("nobody", PASSWORD)):
        status, body, cookies = await post_login(d, name, password)
        assert status == 401 and is_error(body, "bad_credentials"), body
        assert "crswatch_session" not in cookies
    async with aiohttp.ClientSession() as s:
        async with s.post(url(d, "/api/login"), data="username=nina") as r:
            assert r.status == 415 and is_error(await r.json())


async def test_lockout_after_the_account_limit_then_unlock_after_the_time(make_daemon):
    offset = [0.0]
    d = await make_daemon(clock=lambda: time.time() + offset[0], **PROXIED)
    make_user(d, "nina", "nurse")
    # from many addresses (a distributed guesser): the account's own count locks it
    for i in range(ACCOUNT_MAX_FAILURES - 1):
        status, body, _ = await post_login(d, "nina", f"wrong {i}", f"10.0.{i}.1")
        assert status == 401
    status, body, _ = await post_login(d, "nina", "wrong again", "10.1.0.1")
    assert status == 423 and is_error(body, "locked")
    assert "locked for 15 more minutes" in body["error"]["message"]
    # locked: even the right password is refused
    status, body, _ = await post_login(d, "nina", PASSWORD, "10.2.0.1")
    assert status == 423 and is_error(body, "locked")
    offset[0] = LOCKOUT_S + 1
    status, body, _ = await post_login(d, "nina", PASSWORD, "10.2.0.1")
    assert status == 200
    # unknown names lock the same way (a lock-out does not tell which names exist)
    for i in range(ACCOUNT_MAX_FAILURES):
        status, body, _ = await post_login(d, "ghost", "x", f"10.3.{i}.1")
    assert status == 423 and is_error(body, "locked")


async def test_bearer_token_works_without_csrf_cookie_needs_it(make_daemon):
    d = await make_daemon()
    make_user(d, "nina", "nurse")
    session, info = await login(d, "nina")
    try:
        async with aiohttp.ClientSession() as bare:  # no cookie: bearer only
            headers = {"Authorization": f"Bearer {info['token']}"}
            async with bare.get(url(d, "/api/beds"), headers=headers) as r:
                assert r.status == 200 and await r.json() == []
            async with bare.post(url(d, "/api/alerts/x/ack"), headers=headers) as r:
                assert r.status != 403  # no CSRF needed for a bearer token
            async with bare.get(
                url(d, "/api/beds"), headers={"Authorization": "Bearer nonsense"}
            ) as r:
                assert r.status == 401 and is_error(await r.json(), "unauthenticated")
        # the cookie alone is enough to read...
        async with session.get(url(d, "/api/me")) as r:
            assert (await r.json())["via"] == "cookie"
        # ...but not to change anything without the CSRF header
        async with session.post(url(d, "/api/beds/w1/b1/care"), json={"type": "oxygen"}) as r:
            assert r.status == 403 and is_error(await r.json(), "csrf")
        async with session.post(
            url(d, "/api/beds/w1/b1/care"),
            json={"type": "oxygen"},
            headers={"X-CSRF-Token": "forged"},
        ) as r:
            assert r.status == 403 and is_error(await r.json(), "csrf")
        async with session.post(url(d, "/api/logout")) as r:
            assert r.status == 403  # logout is a state change too
    finally:
        await session.close()


async def test_logout_ends_the_session(make_daemon):
    d = await make_daemon()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        assert (await c.post("/api/logout"))[0] == 200
        status, body = await c.get("/api/beds")
        assert status == 401 and is_error(body)
        async with aiohttp.ClientSession() as s:
            headers = {"Authorization": f"Bearer {c.info['token']}"}
            async with s.get(url(d, "/api/beds"), headers=headers) as r:
                assert r.status == 401
    finally:
        await c.close()


async def test_login_form_token_is_checked(make_daemon):
    d = await make_daemon()
    make_user(d, "nina", "nurse")
    async with new_session() as s:
        async with s.get(url(d, "/login")) as r:
            page = await r.text()
            assert r.status == 200 and 'id="login-form"' in page
        form_token = s.cookie_jar.filter_cookies(URL(url(d, "/")))["crswatch_login"].value
        assert f'content="{form_token}"' in page
        body = {"username": "nina", "password": PASSWORD}
        async with s.post(url(d, "/api/login"), json=body) as r:
            assert r.status == 403 and is_error(await r.json(), "csrf")
        async with s.post(
            url(d, "/api/login"), json=body, headers={"Origin": "http://evil.example"}
        ) as r:
            assert r.status == 403 and is_error(await r.json(), "origin")
        async with s.post(
            url(d, "/api/login"), json=body, headers={"X-CSRF-Token": form_token}
        ) as r:
            assert r.status == 200


async def test_pages_redirect_to_login_and_api_is_401(make_daemon):
    d = await make_daemon()
    async with aiohttp.ClientSession() as s:
        for path in ("/", "/patients/P1", "/oncall", "/alerts/a1"):
            async with s.get(url(d, path), allow_redirects=False) as r:
                assert r.status == 302
                assert r.headers["Location"].startswith("/login?next=")
        for path in ("/api/beds", "/api/wards", "/api/alerts", "/api/nope", "/ws"):
            async with s.get(url(d, path)) as r:
                assert r.status == 401 and is_error(await r.json(), "unauthenticated")
        async with s.get(url(d, "/healthz")) as r:
            assert r.status == 200
        async with s.get(url(d, "/metrics")) as r:
            assert r.status == 200 and "crswatch_messages_received_total" in await r.text()


async def test_error_shape_for_404_405_and_csp_header(make_daemon):
    d = await make_daemon()
    c = await Client.as_user(d, "nina", "nurse")
    try:
        status, body = await c.get("/api/nope")
        assert status == 404 and is_error(body, "not_found")
        status, body = await c.get("/api/alerts/no-such-alert")
        assert status == 404 and is_error(body, "not_found")
        status, body = await c.get("/api/patients/NOBODY")
        assert status == 404 and is_error(body, "not_found")
        async with c.session.delete(
            url(d, "/api/beds"), headers={"X-CSRF-Token": c.info["csrf"]}
        ) as r:
            assert r.status == 405 and is_error(await r.json(), "method_not_allowed")
            assert "GET" in r.headers["Allow"]
        async with c.session.post(
            url(d, "/api/beds/w1/b1/care"),
            data=b"{not json",
            headers={"X-CSRF-Token": c.info["csrf"]},
        ) as r:
            assert r.status == 400 and is_error(await r.json(), "bad_json")
        async with c.session.get(url(d, "/")) as r:
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            page = await r.text()
            assert "<script>" not in page and " onclick=" not in page
    finally:
        await c.close()


async def test_roles_nurse_cannot_override_or_manage_accounts(make_daemon):
    d = await make_daemon()
    nurse = await Client.as_user(d, "nina", "nurse")
    admin = await Client.as_user(d, "ada", "admin")
    try:
        status, body = await nurse.post(
            "/api/patients/P1/override", {"scale": "crs", "grade": 2, "reason": "r"}
        )
        assert status == 403 and is_error(body, "forbidden")
        assert (await nurse.get("/api/users"))[0] == 403
        status, body = await nurse.post(
            "/api/users", {"username": "x", "role": "nurse", "password": "long enough pw"}
        )
        assert status == 403 and is_error(body, "forbidden")
        status, users = await admin.get("/api/users")
        assert status == 200 and {u["username"] for u in users} == {"nina", "ada"}
        assert all("password_hash" not in u for u in users)
        status, body = await admin.post(
            "/api/users", {"username": "phil", "role": "physician", "password": "a good password"}
        )
        assert status == 201 and body["role"] == "physician"
        status, body = await admin.post(
            "/api/users", {"username": "phil", "role": "nurse", "password": "a good password"}
        )
        assert status == 409 and is_error(body, "exists")
        status, body = await admin.post(
            "/api/users", {"username": "bob", "role": "surgeon", "password": "a good password"}
        )
        assert status == 422 and is_error(body, "invalid")
        # an admin manages accounts; it does not treat patients
        status, body = await admin.post("/api/beds/w1/b1/care", {"type": "oxygen"})
        assert status == 403
        phil, _ = await login(d, "phil", "a good password")
        await phil.close()
    finally:
        await nurse.close()
        await admin.close()


async def test_sessions_expire(make_daemon):
    offset = [0.0]
    d = await make_daemon(clock=lambda: time.time() + offset[0])
    c = await Client.as_user(d, "nina", "nurse")
    try:
        assert (await c.get("/api/me"))[0] == 200
        offset[0] = d.cfg["http.session_max_s"] + 1
        status, body = await c.get("/api/me")
        assert status == 401 and is_error(body, "unauthenticated")
    finally:
        await c.close()


async def test_an_exception_in_a_handler_is_a_500_in_the_error_shape():
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from dashboard.errors import errors, security_headers

    async def boom(request):
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[security_headers, errors])
    app.router.add_get("/api/boom", boom)
    app.router.add_get("/page", boom)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/boom")
        assert r.status == 500 and is_error(await r.json(), "internal")
        assert "a bug" not in await r.text()  # no internals leak out
        r = await client.get("/page")
        assert r.status == 500 and "text/html" in r.headers["Content-Type"]
        r = await client.post("/api/boom")
        assert r.status == 405 and is_error(await r.json(), "method_not_allowed")
