"""GET /ws at the front: one live feed for the whole hospital, merged from every daemon's.

For each page the front opens the daemon's own /ws on every daemon, with the user's bearer
token there, and
* sends one snapshot: every daemon's beds (worst first) and alerts together. A daemon that
  does not answer is a tier-3 notice in it (ward "", id `hospital:{daemon}`): its beds are
  not shown, and nobody may take that for a quiet ward;
* then passes every event on as the daemon sent it (alerts first, as each daemon orders
  them), untouched: text in, the same text out;
* when a daemon resynchronises (its snapshot with "resync"), goes away, or comes back, or
  when the page falls behind, closes the page's socket with RESYNC (4001): the page opens
  it again at once and gets a fresh merged snapshot. A daemon that went away closes it
  with 1012 (service restart): the page shows it is reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from dashboard.core import severity_key
from monitor.ops.http import error

from .config import Daemon
from .front import DAEMON_WARD, FRONT, Front, tag, unreachable_text

log = logging.getLogger("crswatch.hospital")

RESYNC = 4001  # the page reconnects at once (dashboard/static/js/live.js)
HEARTBEAT_S = 20.0  # the page's socket, as a daemon's own
UPSTREAM_HEARTBEAT_S = 10.0  # a daemon that stops answering is found within 15 s
SEND_TIMEOUT_S = 5.0
OPEN_TIMEOUT_S = 10.0  # a daemon's socket and its snapshot (a frozen process accepts TCP)
QUEUE_MAX = 20_000  # events waiting for one page; beyond it the page starts again
RETRY_S = 5.0  # a daemon that did not answer is tried again this often
SOCKETS = web.AppKey("front_sockets", set)


def notice(d: Daemon, why: str, now: float) -> dict:
    text = unreachable_text(d)
    return {
        "id": f"hospital:{d.name}",
        "tier": 3,
        "kind": "daemon_unreachable",
        "ward": "",
        "bed": "",
        "patient_id": None,
        "ts": now,
        "raised_ts": now,
        "tier_ts": now,
        "state": "active",
        "level": 0,
        "message": f"{text}: its beds are not shown here, and they may not be monitored",
        "reason": why,
        "detail": {"daemon": d.name, "wards": list(d.wards)},
        "told": [],
        "escalation_level": 0,
    }


async def _open(f: Front, request: web.Request, session, d: Daemon):
    """(socket, its snapshot) from daemon d within OPEN_TIMEOUT_S; raises on failure."""
    return await asyncio.wait_for(_connect(f, request, session, d), OPEN_TIMEOUT_S)


async def _connect(f: Front, request: web.Request, session, d: Daemon):
    headers = f.headers(request, session, d)
    headers.pop("Content-Type", None)
    up = await f.client.ws_connect(
        d.url + "/ws",
        headers=headers,
        heartbeat=UPSTREAM_HEARTBEAT_S,
        max_msg_size=0,  # a snapshot of a big ward is megabytes
        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
    )
    try:
        msg = await up.receive()
        if msg.type != WSMsgType.TEXT:
            raise ConnectionError(f"closed before its snapshot ({msg.type.name})")
        snap = orjson.loads(msg.data)
        if snap.get("type") != "snapshot":
            raise ConnectionError("its first message was not a snapshot")
        return up, snap
    except BaseException:
        await up.close()
        raise


async def handler(request: web.Request) -> web.StreamResponse:
    f: Front = request.app[FRONT]  # type: ignore[assignment]
    session = f.session_of(request)
    if session is None:
        return error(
            401, "unauthenticated", "log in first (session cookie or Authorization: Bearer token)"
        )
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=16 * 1024)
    if not ws.can_prepare(request).ok:
        return error(400, "bad_request", "this path takes a WebSocket upgrade")
    opened = await asyncio.gather(
        *(_open(f, request, session, d) for d in f.daemons), return_exceptions=True
    )
    ups: dict[str, aiohttp.ClientWebSocketResponse] = {}
    snaps: list[dict] = []
    down: dict[str, str] = {}
    refusal = None
    for d, got in zip(f.daemons, opened, strict=True):
        if isinstance(got, BaseException):
            if isinstance(got, aiohttp.WSServerHandshakeError) and got.status in (401, 403):
                refusal = got
            down[d.name] = f"{type(got).__name__}: {got}"[:200]
        else:
            ups[d.name], snap = got
            for alert in snap.get("alerts", ()):
                tag(alert, d)
            snaps.append(snap)
    if refusal is not None:
        for up in ups.values():
            await up.close()
        if refusal.status == 401:
            f.forget(request)
            return error(401, "unauthenticated", "the session ended: log in again")
        return error(403, "origin", "WebSocket from another origin refused")
    try:
        await ws.prepare(request)
        request.app[SOCKETS].add(ws)
        await ws.send_str(_merged(f, snaps, down))
        await _relay(f, request, session, ws, ups, down)
    finally:
        request.app[SOCKETS].discard(ws)
        for up in ups.values():
            await up.close()
    return ws


def _merged(f: Front, snaps: list[dict], down: dict[str, str]) -> str:
    now = time.time()
    first = snaps[0] if snaps else {}
    beds = sorted((b for s in snaps for b in s.get("beds", ())), key=severity_key)
    alerts = [a for s in snaps for a in s.get("alerts", ())]
    alerts += [notice(d, down[d.name], now) for d in f.daemons if d.name in down]
    out = {
        "type": "snapshot",
        "resync": False,
        "ts": first.get("ts", now),
        "beds": beds,
        "alerts": alerts,
        "now": first.get("now", now),
        "rate": first.get("rate", 1),
        "daemons": {d.name: ("down" if d.name in down else "up") for d in f.daemons},
    }
    return orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS).decode()


async def _relay(f: Front, request, session, ws: web.WebSocketResponse, ups, down) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_MAX)
    ended: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def end(code: int, why: str) -> None:
        if not ended.done():
            ended.set_result((code, why))

    async def pump(d: Daemon, up: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in up:
            if msg.type != WSMsgType.TEXT:
                continue
            text = msg.data
            if text.startswith('{"type":"snapshot"'):
                return end(RESYNC, f"{d.name} resynchronised")
            if text.startswith('{"type":"alert"') and f'"{DAEMON_WARD}"' in text:
                event = orjson.loads(text)  # a daemon's own alert (rare): named
                tag(event.get("alert") or {}, d)
                text = orjson.dumps(event).decode()
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                return end(RESYNC, "the page fell behind")
        code = up.close_code or 0
        if code == WSCloseCode.POLICY_VIOLATION:  # the session ended on that daemon
            return end(code, (up.exception() and str(up.exception())) or "session ended")
        end(WSCloseCode.SERVICE_RESTART, f"{d.name} went away")

    async def retry(d: Daemon) -> None:
        while True:
            await asyncio.sleep(RETRY_S)
            with contextlib.suppress(Exception):
                up, _ = await _open(f, request, session, d)
                await up.close()
                return end(RESYNC, f"{d.name} answers again")

    async def send() -> None:
        while True:
            text = await queue.get()
            try:
                await asyncio.wait_for(ws.send_str(text), SEND_TIMEOUT_S)
            except TimeoutError:
                if request.transport is not None:
                    request.transport.abort()  # reads nothing: the page starts again
                return end(RESYNC, "the page reads too slowly")
            except (ConnectionResetError, RuntimeError):
                return end(RESYNC, "the page went away")

    async def read() -> None:
        async for _msg in ws:
            pass
        end(0, "")

    tasks = [asyncio.create_task(pump(d, ups[d.name])) for d in f.daemons if d.name in ups]
    tasks += [asyncio.create_task(retry(d)) for d in f.daemons if d.name in down]
    tasks += [asyncio.create_task(send()), asyncio.create_task(read())]
    for t in tasks:
        t.add_done_callback(
            lambda t: t.cancelled() or t.exception() is None or end(RESYNC, str(t.exception()))
        )
    try:
        code, why = await ended
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if code and not ws.closed:
        with contextlib.suppress(Exception):
            await ws.close(code=code, message=why.encode()[:120])


async def close_all(app: web.Application) -> None:
    for ws in list(app.get(SOCKETS, ())):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
