"""Mounts the dashboard and its API on the daemon's aiohttp application.

/login, /, /patients/{id}, /oncall, /alerts/{id}, /users   pages (login first)
/api/...                                                   JSON (cookie or bearer)
/ws                                                        live feed
/static/...                                                JS, CSS, vendored uPlot
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from . import alerts_api, api, auth, pages, users_api, ws
from .core import DASH, Dashboard
from .errors import errors, security_headers

STATIC = Path(__file__).parent / "static"


def setup(app: web.Application, daemon) -> None:
    """Add the dashboard's routes to `app` (called by Daemon.start)."""
    d = Dashboard(daemon)
    app[DASH] = d
    # outermost first: headers on every answer, then errors in one shape, then login
    app.middlewares.extend([security_headers, errors, auth.middleware])
    for module in (auth, api, alerts_api, users_api, ws, pages):
        module.add_routes(app.router)
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    app.on_shutdown.append(ws.close_all)
    app.on_cleanup.append(_close(d))


def _close(d: Dashboard):
    async def close(app: web.Application) -> None:
        d.close()

    return close
