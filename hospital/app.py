"""The front's aiohttp application: front.py's routes and feed.py's live feed."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from . import feed
from .config import Hospital
from .front import FRONT, MAX_BODY, Front, handle


def make_app(hospital: Hospital) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[feed.SOCKETS] = set()

    async def start(app: web.Application) -> None:
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200),
            cookie_jar=aiohttp.DummyCookieJar(),  # one client for every user: keep no cookie
        )
        app[FRONT] = Front(hospital, client)

    async def stop(app: web.Application) -> None:
        await feed.close_all(app)

    async def cleanup(app: web.Application) -> None:
        await app[FRONT].client.close()  # type: ignore[attr-defined]

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.on_cleanup.append(cleanup)
    app.router.add_get("/ws", feed.handler)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
