"""deploy/proxy/crswatch.nginx.conf, run as shipped (ports and certificate paths
substituted) in front of a real daemon: a browser-like client logs in over https, gets a
Secure cookie, opens the live feed; a foreign name gets no TLS handshake; the client
cannot choose the address the daemon throttles it by; /metrics is not served outside."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver

from dashboard.core import DASH
from tests.support.brokers import ROOT, free_port
from tests.support.dashboard import PASSWORD, make_user

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = ROOT / "deploy" / "proxy" / "crswatch.nginx.conf"
NAME = "crswatch.example"

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists() or not shutil.which("openssl"),
    reason="needs nginx (apt-get install nginx-light) and openssl",
)


class Local(AbstractResolver):
    """crswatch.example is this machine (no DNS in a test)."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self):
        pass


def certificate(tmp: Path) -> Path:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}",
            "-keyout", str(tmp / "crswatch.key"), "-out", str(tmp / "crswatch.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp / "crswatch.crt"


def start_nginx(tmp: Path, daemon_port: int) -> tuple[subprocess.Popen, int]:
    https, http = free_port(), free_port()
    site = (
        CONF.read_text()
        .replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{daemon_port};")
        .replace("listen 443", f"listen 127.0.0.1:{https}")
        .replace("listen 80;", f"listen 127.0.0.1:{http};")
        .replace("/etc/crswatch/tls/", f"{tmp}/")
    )
    assert site.count(str(daemon_port)) == 1 and site.count(str(https)) == 2
    (tmp / "site.conf").write_text(site)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir()
        (tmp / d).chmod(0o777)
    (tmp / "nginx.conf").write_text(
        f"""
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    )
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https), timeout=0.5).close()
            return proc, https
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(
                    f"nginx did not start: {proc.stderr.read().decode()}"
                ) from None
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("nginx did not listen")


async def test_the_shipped_nginx_config_serves_the_dashboard_over_https(make_daemon, tmp_path):
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    cert = certificate(tmp)
    d = await make_daemon(
        http={
            "port": 0,
            "public_url": f"https://{NAME}",
            "trusted_proxies": ["127.0.0.1"],
            "allowed_hosts": [NAME],
        }
    )
    make_user(d, "nina", "nurse")
    proc, port = start_nginx(tmp, d.http_port)
    base = f"https://{NAME}:{port}"
    tls = ssl.create_default_context(cafile=str(cert))
    try:
        connector = aiohttp.TCPConnector(ssl=tls, resolver=Local())
        jar = aiohttp.CookieJar()
        async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as s:
            async with s.get(f"{base}/login") as r:  # as a browser: the form, its token
                assert r.status == 200 and r.cookies["crswatch_login"]["secure"]
                token = r.cookies["crswatch_login"].value
            headers = {"Origin": base, "X-CSRF-Token": token}  # as a browser sends them
            body = {"username": "nina", "password": PASSWORD}
            async with s.post(f"{base}/api/login", json=body, headers=headers) as r:
                answer = await r.text()
                assert r.status == 200, answer
                assert r.cookies["crswatch_session"]["secure"]
                assert r.headers["Strict-Transport-Security"]
            async with s.get(f"{base}/api/me") as r:
                assert r.status == 200 and (await r.json())["name"] == "nina"
            async with s.ws_connect(f"wss://{NAME}:{port}/ws", headers={"Origin": base}) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
            async with s.get(f"{base}/metrics") as r:
                assert r.status == 404
            # a client's own X-Forwarded-For is replaced by nginx: it is 127.0.0.1 here
            bad = {"username": "nina", "password": "wrong guess"}
            spoof = {"X-Forwarded-For": "203.0.113.9", "Origin": base}
            async with s.post(f"{base}/api/login", json=bad, headers=spoof) as r:
                assert r.status == 401
        sources = d.http.app[DASH].gate.sources
        assert sources.failures("203.0.113.9") == 0
        # a name that is not the dashboard's: no handshake (DNS rebinding, scanners)
        other = ssl.create_default_context(cafile=str(cert))
        other.check_hostname = False
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=other, server_hostname="rebound.example"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
