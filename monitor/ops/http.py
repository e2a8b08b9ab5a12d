"""The HTTP side of the daemon: health and metrics (the dashboard mounts here too)."""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HEALTH = web.AppKey("health", object)
METRICS = web.AppKey("metrics", object)
METRICS_TOKEN = web.AppKey("metrics_token", str)


def error(status: int, code: str, message: str) -> web.Response:
    """The one error shape of every API error."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def healthz(request: web.Request) -> web.Response:
    problems = request.app[HEALTH]()
    body = {"status": "ok" if not problems else "unavailable", "problems": problems}
    return web.json_response(body, status=200 if not problems else 503)


def _loopback(remote: str | None) -> bool:
    try:
        return ipaddress.ip_address(remote or "").is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics: with `http.metrics_token` set, for `Authorization: Bearer
    <token>` only; without, for loopback clients only (a proxy's forwarded clients are not
    loopback)."""
    token = request.app[METRICS_TOKEN]
    if token:
        sent = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            return error(401, "unauthenticated", "metrics need Authorization: Bearer <token>")
    elif not _loopback(request.remote):
        return error(
            403, "forbidden", "metrics answer only to this machine (set http.metrics_token)"
        )
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(health, metrics_obj, metrics_token: str = "") -> web.Application:
    """`health()` returns the list of problems (empty when healthy)."""
    app = web.Application()
    app[HEALTH] = health
    app[METRICS] = metrics_obj
    app[METRICS_TOKEN] = metrics_token
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
