"""Mounts the dashboard and its API on the daemon's aiohttp application.

/login, /, /patients/{id}, /oncall, /alerts/{id}, /users   pages (login first)
/api/...                                                   JSON (cookie or bearer)
/ws                                                        live feed
/static/...                                                JS, CSS, vendored uPlot
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from monitor.port import DashboardPort

from . import alerts_api, api, auth, login, pages, users_api, ws
from .core import DASH, Dashboard
from .errors import errors, security_headers
from .guard import proxy

STATIC = Path(__file__).parent / "static"
REFUSALS_FLUSH_S = 10.0  # summaries of refused requests go to the audit chain this often


def setup(app: web.Application, port: DashboardPort) -> None:
    """Add the dashboard's routes to `app` (called by Daemon.start)."""
    d = Dashboard(port)
    app[DASH] = d
    cfg = port.cfg
    forwarded = proxy.middleware(
        proxy.networks(cfg["http.trusted_proxies"]),
        frozenset(h.lower() for h in cfg["http.allowed_hosts"])
        or proxy.default_hosts(cfg["http.host"], cfg["http.public_url"]),
    )
    # outermost first: the Host and the proxy's headers, headers on every answer, then
    # errors in one shape, then login
    app.middlewares[:0] = [forwarded]  # before /healthz and /metrics too
    app.middlewares.extend([security_headers, errors, auth.middleware])
    for module in (login, api, alerts_api, users_api, ws, pages):
        module.add_routes(app.router)
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    app.on_shutdown.append(ws.close_all)
    app.on_startup.append(_refusal_summaries(d))
    app.on_cleanup.append(_close(d))


def _refusal_summaries(d: Dashboard):
    async def start(app: web.Application) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(REFUSALS_FLUSH_S)
                await d.flush_refusals()
                d.prune_sessions()

        task = asyncio.create_task(loop(), name="refusal-summaries")
        d.background.append(task)

    return start


def _close(d: Dashboard):
    async def close(app: web.Application) -> None:
        for task in d.background:
            task.cancel()
        await d.flush_refusals(everything=True)
        d.close()

    return close
