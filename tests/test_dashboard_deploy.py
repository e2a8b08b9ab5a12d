"""Issue 15, 7. and 10.: behind a TLS-terminating proxy (X-Forwarded-Proto from a trusted
proxy only), the Host header (DNS rebinding), /metrics, malformed headers and bodies (a
4xx, never a 500), and the files the daemon creates (0600)."""

from __future__ import annotations

import asyncio
import os
import stat

import aiohttp

from dashboard.guard.proxy import client_of, host_name, networks
from tests.support.dashboard import PASSWORD, Client, is_error, make_user, url

PUBLIC = "https://crswatch.example"


def via_proxy(d, **extra) -> dict:
    """Headers as nginx (deploy/proxy/nginx.conf) sends them for https://crswatch.example."""
    return {
        "Host": "crswatch.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "10.20.30.40",
        **extra,
    }


async def test_behind_a_tls_proxy_login_cookie_and_websocket_work(make_daemon):
    """Before: the browser's login and WebSocket got `403 origin`, the cookie never
    `Secure`."""
    d = await make_daemon(
        http={"port": 0, "trusted_proxies": ["127.0.0.1/32"], "public_url": PUBLIC}
    )
    make_user(d, "nina", "nurse")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(url(d, "/login"), headers=via_proxy(d)) as r:
            assert r.status == 200
            assert r.cookies["crswatch_login"]["secure"]
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
            token = r.cookies["crswatch_login"].value
        headers = via_proxy(d, Origin=PUBLIC, **{"X-CSRF-Token": token})
        body = {"username": "nina", "password": PASSWORD}
        async with s.post(url(d, "/api/login"), json=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            cookie = r.cookies["crswatch_session"]
            assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
            session = cookie.value
        # the browser sends the cookie back over https (the proxy): a live page opens
        headers = via_proxy(d, Origin=PUBLIC, Cookie=f"crswatch_session={session}")
        async with aiohttp.ClientSession() as bare:
            async with bare.ws_connect(
                url(d, "/ws").replace("http:", "ws:"), headers=headers
            ) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
            headers["Origin"] = "https://evil.example"
            async with bare.get(url(d, "/ws"), headers=headers) as r:
                assert r.status == 403 and is_error(await r.json(), "origin")


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(make_daemon):
    d = await make_daemon(http={"port": 0, "public_url": "http://crswatch.example"})
    make_user(d, "nina", "nurse")
    async with aiohttp.ClientSession() as s:
        body = {"username": "nina", "password": PASSWORD}
        headers = via_proxy(d, Origin="https://crswatch.example")
        async with s.post(url(d, "/api/login"), json=body, headers=headers) as r:
            # not https: the claimed scheme is not believed, so the origin is foreign
            assert r.status == 403 and is_error(await r.json(), "origin")
        headers = {"X-Forwarded-Proto": "https"}
        async with s.post(url(d, "/api/login"), json=body, headers=headers) as r:
            assert r.status == 200 and not r.cookies["crswatch_session"]["secure"]


def test_the_client_address_is_the_rightmost_untrusted_hop():
    trusted = networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_of("127.0.0.1", "1.2.3.4, 10.1.1.1", trusted) == "1.2.3.4"
    assert client_of("127.0.0.1", "6.6.6.6, 1.2.3.4", trusted) == "1.2.3.4"  # spoof ignored
    assert client_of("192.0.2.9", "1.2.3.4", trusted) == "192.0.2.9"  # not a proxy
    assert client_of("127.0.0.1", "not-an-ip", trusted) == "127.0.0.1"
    assert host_name("[::1]:8080") == "::1" and host_name("Ward.Example:443") == "ward.example"


async def raw(d, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (non-ASCII headers included); (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", d.http_port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_dns_rebinding_host_names_are_refused(make_daemon):
    d = await make_daemon()
    p = d.http_port
    for host, expected in (
        (b"evil.example", 421),
        (f"attacker.example:{p}".encode(), 421),
        (f"localhost:{p}".encode(), 200),
        (f"127.0.0.1:{p}".encode(), 200),
        (b"[::1]", 200),
    ):
        status, body = await raw(
            d, b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        )
        assert status == expected, (host, body)
    d2 = await make_daemon(http={"port": 0, "allowed_hosts": ["ward.example"]})
    status, _ = await raw(
        d2, b"GET /healthz HTTP/1.1\r\nHost: ward.example\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    status, body = await raw(
        d2, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert status == 421 and b"bad_host" in body


async def test_metrics_answer_loopback_or_a_token_only(make_daemon):
    d = await make_daemon(http={"port": 0, "trusted_proxies": ["127.0.0.1"]})
    async with aiohttp.ClientSession() as s:
        async with s.get(url(d, "/metrics")) as r:
            assert r.status == 200
        async with s.get(url(d, "/metrics"), headers={"X-Forwarded-For": "10.0.0.5"}) as r:
            assert r.status == 403 and is_error(await r.json(), "forbidden")
    d = await make_daemon(http={"port": 0, "metrics_token": "s3cret-metrics-token"})
    async with aiohttp.ClientSession() as s:
        async with s.get(url(d, "/metrics")) as r:
            assert r.status == 401 and is_error(await r.json(), "unauthenticated")
        headers = {"Authorization": "Bearer wrong"}
        async with s.get(url(d, "/metrics"), headers=headers) as r:
            assert r.status == 401
        headers = {"Authorization": "Bearer s3cret-metrics-token"}
        async with s.get(url(d, "/metrics"), headers=headers) as r:
            assert r.status == 200 and "crswatch_messages_received_total" in await r.text()


async def test_malformed_headers_and_bodies_are_4xx_never_500(make_daemon, caplog):
    """Before: a non-ASCII X-CSRF-Token or cookie, or an override whose scale is an
    object, gave a 500 with a logged traceback."""
    d = await make_daemon()
    c = await Client.as_user(d, "phil", "physician")
    try:
        p = d.http_port
        cookie = f"crswatch_session={c.info['token']}".encode()
        body = b'{"type": "oxygen", "device": "room_air"}'
        for extra in (
            b"Cookie: " + cookie + b"\r\nX-CSRF-Token: caf\xc3\xa9-\xe2\x98\x83\r\n",
            b"Cookie: " + cookie + b"\r\nX-CSRF-Token: \xff\xfe\r\n",
            b"Cookie: crswatch_session=caf\xc3\xa9\r\n",
            b"Authorization: Bearer \xc3\xa9\xc3\xa9\r\n",
        ):
            request = (
                b"POST /api/beds/w1/b1/care HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % p
                + extra
                + b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
                + b"Connection: close\r\n\r\n"
                + body
            )
            status, answer = await raw(d, request)
            assert 400 <= status < 500, (extra, status, answer)
        for override in (
            {"scale": {"crs": 1}, "grade": 2, "reason": "r"},
            {"scale": ["crs"], "grade": 2, "reason": "r"},
            {"scale": "crs", "grade": {"a": 1}, "reason": "r"},
            {"scale": "crs", "grade": 2, "reason": {"r": 1}},
        ):
            status, answer = await c.post("/api/patients/P1/override", override)
            assert status == 422 and is_error(answer, "invalid"), (override, answer)
        for login in (
            {"username": {"a": 1}, "password": "x"},
            {"username": "n" * 500, "password": "x"},
        ):
            async with aiohttp.ClientSession() as s:
                async with s.post(url(d, "/api/login"), json=login) as r:
                    assert r.status == 400 and is_error(await r.json(), "bad_request")
    finally:
        await c.close()
    assert not [r for r in caplog.records if r.levelname == "ERROR" and "failed" in r.message]


async def test_the_database_key_and_anchor_are_created_0600(make_daemon):
    d = await make_daemon()
    make_user(d, "nina", "nurse")
    c = await Client.as_user(d, "phil", "physician")  # something audited
    await c.close()
    await d.stop()
    db = d.cfg["storage.path"]
    key, anchor = d.cfg.audit_paths()
    for path in (db, f"{db}-wal", key, anchor):
        if os.path.exists(path):
            mode = stat.S_IMODE(os.stat(path).st_mode)
            assert mode == 0o600, (path, oct(mode))
    assert os.path.exists(key) and os.path.exists(anchor)
