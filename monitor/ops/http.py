"""The HTTP side of the daemon: health and metrics (the dashboard mounts here too)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HEALTH = web.AppKey("health", object)
METRICS = web.AppKey("metrics", object)


def error(status: int, code: str, message: str) -> web.Response:
    """The one error shape of every API error."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def healthz(request: web.Request) -> web.Response:
    problems = request.app[HEALTH]()
    body = {"status": "ok" if not problems else "unavailable", "problems": problems}
    return web.json_response(body, status=200 if not problems else 503)


async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(health, metrics_obj) -> web.Application:
    """`health()` returns the list of problems (empty when healthy)."""
    app = web.Application()
    app[HEALTH] = health
    app[METRICS] = metrics_obj
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
