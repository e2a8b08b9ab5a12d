"""Issue 15, 4. and 10.: a session ends everywhere at once, the live page included: at
logout, password reset, role change, account disabled, sessions revoked (from the admin
page or the CLI), and after the idle timeout. An admin sees no patient data."""

from __future__ import annotations

import time

import aiohttp
import pytest
from aiohttp import WSMsgType

from monitor.store.accounts import add_user, change_account
from tests.support.dashboard import PASSWORD, Client, admit, is_error, url

NORMAL = {"hr": 80, "rr": 14, "spo2": 97, "sbp": 122, "dbp": 76, "map": 91, "acvpu": "A"}


def ws_url(d) -> str:
    return url(d, "/ws").replace("http://", "ws://")


def origin(d) -> dict:
    return {"Origin": f"http://127.0.0.1:{d.http_port}"}


async def closed_or_states(ws, timeout: float = 20.0) -> str:
    """Read until the socket closes ("closed") or the deadline passes ("open")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = await ws.receive(timeout=deadline - time.monotonic())
        except TimeoutError:
            return "open"
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return "closed"
    return "open"


async def live_page(d, publisher, c: Client):
    """A nurse's live ward page, with a patient streaming."""
    await admit(publisher, d.cfg.prefix, "w1", "b1", "P1")
    ws = await c.session.ws_connect(ws_url(d), headers=origin(d))
    snap = await ws.receive_json(timeout=10)
    assert snap["type"] == "snapshot"
    return ws


@pytest.mark.parametrize(
    "how", ["logout", "password", "role", "disable", "revoke", "cli_reset", "cli_disable"]
)
async def test_the_live_page_closes_when_the_session_or_account_ends(make_daemon, publisher, how):
    d = await make_daemon()
    nurse = await Client.as_user(d, "nina", "nurse")
    admin = await Client.as_user(d, "ada", "admin")
    ws = await live_page(d, publisher, nurse)
    try:
        if how == "logout":
            assert (await nurse.post("/api/logout"))[0] == 200
        elif how == "password":
            status, body = await admin.post(
                "/api/users/nina/password", {"password": "a new long secret"}
            )
            assert status == 200 and body["live_pages_closed"] == 1, body
        elif how == "role":
            status, body = await admin.post("/api/users/nina/role", {"role": "physician"})
            assert status == 200 and body["previous_role"] == "nurse"
        elif how in ("disable", "revoke"):
            status, body = await admin.post(f"/api/users/nina/{how}")
            assert status == 200, body
        elif how == "cli_reset":  # another process: the daemon sees it within seconds
            add_user(d.cfg["storage.path"], "nina", "nurse", "another long secret")
        else:
            change_account(d.cfg["storage.path"], "nina", "disable")
        # a reading that would be streamed to a page still open
        await publisher(f"{d.cfg.prefix}/w1/b1/vitals", {"ts": time.time() - 1, **NORMAL})
        assert await closed_or_states(ws) == "closed"
        status, body = await nurse.get("/api/beds")
        assert status == 401 and is_error(body, "unauthenticated")
    finally:
        await ws.close()
        await nurse.close()
        await admin.close()


async def test_disabled_accounts_cannot_log_in_and_enable_restores(make_daemon):
    d = await make_daemon()
    admin = await Client.as_user(d, "ada", "admin")
    try:
        add_user(d.cfg["storage.path"], "nina", "nurse", PASSWORD)
        assert (await admin.post("/api/users/nina/disable"))[0] == 200
        async with aiohttp.ClientSession() as s:
            body = {"username": "nina", "password": PASSWORD}
            async with s.post(url(d, "/api/login"), json=body) as r:
                assert r.status == 401 and is_error(await r.json(), "bad_credentials")
        status, users = await admin.get("/api/users")
        assert {u["username"]: u["disabled"] for u in users} == {"ada": False, "nina": True}
        assert (await admin.post("/api/users/nina/enable"))[0] == 200
        async with aiohttp.ClientSession() as s:
            body = {"username": "nina", "password": PASSWORD}
            async with s.post(url(d, "/api/login"), json=body) as r:
                assert r.status == 200
        status, body = await admin.post("/api/users/ada/disable")
        assert status == 409 and is_error(body, "not_allowed")  # not its own account
        status, body = await admin.post("/api/users/nobody/revoke")
        assert status == 404 and is_error(body, "not_found")
        status, body = await admin.post("/api/users/nina/password", {"password": "password123"})
        assert status == 422 and "common" in body["error"]["message"]
    finally:
        await admin.close()


async def test_idle_sessions_end_and_use_keeps_them(make_daemon):
    offset = [0.0]
    d = await make_daemon(
        clock=lambda: time.time() + offset[0], http={"port": 0, "session_idle_s": 600.0}
    )
    c = await Client.as_user(d, "nina", "nurse")
    try:
        for _ in range(3):  # used every 8 minutes: still logged in after 24
            offset[0] += 480
            assert (await c.get("/api/me"))[0] == 200
        offset[0] += 601
        status, body = await c.get("/api/me")
        assert status == 401 and is_error(body, "unauthenticated")
    finally:
        await c.close()


async def test_an_admin_manages_accounts_and_sees_no_patient_data(make_daemon, publisher):
    d = await make_daemon()
    await admit(publisher, d.cfg.prefix, "w1", "b1", "P1")
    admin = await Client.as_user(d, "ada", "admin")
    try:
        for path in ("/api/beds", "/api/wards", "/api/patients/P1", "/api/alerts", "/ws"):
            status, body = await admin.get(path)
            assert status == 403 and is_error(body, "forbidden"), path
        async with admin.session.get(url(d, "/"), allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/users"
        async with admin.session.get(url(d, "/patients/P1")) as r:
            assert r.status == 403
        assert (await admin.get("/api/users"))[0] == 200
        assert (await admin.get("/api/me"))[1]["permissions"] == ["users"]
    finally:
        await admin.close()
