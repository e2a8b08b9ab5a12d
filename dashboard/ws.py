"""GET /ws: the live dashboard feed.

On connect the client gets a snapshot (every admitted bed with its active alerts, and the
active alerts), then every hub event as JSON text: {"type": "state" | "alert" | "override"
| "ping" | "snapshot", ...}. Bed states waiting together go as one message, {"type":
"states", "states": [state, ...]} in their order (up to STATES_PER_MESSAGE): a thousand
beds graded in one pass are one message, not a thousand (the page, and a hospital's
front, pay per message). Each client has its own hub listener (a bounded queue) and its
own sending task; a send that does not finish within SEND_TIMEOUT_S closes that client
alone, so one slow client never delays the others. Of what waits for a client, alerts go
first: before the bed states waiting with them (`_Backlog`). When a client's queue
overflowed, the events it missed are replaced by a fresh snapshot with "resync": true.
aiohttp's heartbeat (ping/pong) finds dead clients; the "ping" messages let the page find
a dead server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

from monitor.ops.http import error

from .auth import current, origin_ok, session_user
from .core import Dashboard, dash

log = logging.getLogger("crswatch.dashboard")

HEARTBEAT_S = 20.0  # aiohttp pings; no pong within half of it closes the socket
SEND_TIMEOUT_S = 5.0
IDLE_PING_S = 25.0  # an application "ping" when nothing else was sent
POLL_S = 1.0  # how often an idle sender checks whether its listener overflowed
SESSION_CHECK_S = 2.0  # how often the session is checked (a change made by the CLI)
STATES_PER_MESSAGE = 500


def clock_fields(d: Dashboard) -> dict[str, Any]:
    """The daemon's clock as every page and live message carries it: its now (epoch s),
    its rate (1 on a ward; the demo's simulated speed), and, when the demo paces itself,
    the speed asked for and how many simulated seconds the daemon is behind the ward."""
    out: dict[str, Any] = {"now": d.now(), "rate": d.port.clock_rate()}
    pacing = d.port.pacing()
    if pacing is not None:
        out["asked_rate"] = pacing.asked
        out["behind_s"] = pacing.behind_s
    return out


def _dumps(event: dict[str, Any]) -> str:
    return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


async def _send(ws: web.WebSocketResponse, event: dict[str, Any], d: Dashboard) -> None:
    # Every message carries the daemon's clock and its rate, so the page computes ages
    # on the daemon's time (a demo or replay runs faster than the wall clock).
    event = {**event, **clock_fields(d)}
    await asyncio.wait_for(ws.send_str(_dumps(event)), SEND_TIMEOUT_S)


def _drain(queue: asyncio.Queue) -> None:
    while not queue.empty():
        queue.get_nowait()


class _Backlog:
    """What waits to be sent to one client, alerts first: every other event goes before
    the bed states waiting with it, each kind in the order it came. An alert is a request
    for someone's time; a state follows it by milliseconds (when every bed of a ward
    raised at once, the last alert waited behind a thousand states). Bounded as the hub's
    queue is: a client this far behind is resynchronised."""

    def __init__(self, limit: int):
        self.limit = limit
        self.urgent: deque[dict[str, Any]] = deque()
        self.states: deque[dict[str, Any]] = deque()

    def __len__(self) -> int:
        return len(self.urgent) + len(self.states)

    def add(self, event: dict[str, Any]) -> None:
        (self.states if event.get("type") == "state" else self.urgent).append(event)

    def take(self, queue: asyncio.Queue) -> bool:
        """Move what the hub queued; False when over the limit (the client fell behind)."""
        while not queue.empty():
            self.add(queue.get_nowait())
        return len(self) <= self.limit

    def next(self) -> dict[str, Any] | None:
        """The next message: an urgent event, else the states waiting (one message)."""
        if self.urgent:
            return self.urgent.popleft()
        if len(self.states) == 1:
            return self.states.popleft()
        if not self.states:
            return None
        n = min(len(self.states), STATES_PER_MESSAGE)
        return {"type": "states", "states": [self.states.popleft() for _ in range(n)]}

    def clear(self) -> None:
        self.urgent.clear()
        self.states.clear()


async def _sender(
    d: Dashboard, ws: web.WebSocketResponse, listener, transport: asyncio.Transport | None, user
) -> None:
    loop = asyncio.get_running_loop()
    backlog = _Backlog(listener.queue.maxsize)
    try:
        await _send(ws, d.snapshot(), d)
        last_sent = checked = loop.time()
        while not ws.closed:
            if loop.time() - checked >= SESSION_CHECK_S:
                checked = loop.time()
                now_user = session_user(d, user.token_hash, user.via)  # counts as use
                if now_user is None or now_user.role != user.role:
                    await d.end_sessions(token_hash=user.token_hash, why="session ended")
                    return
            if not listener.overflowed and not backlog:
                with contextlib.suppress(TimeoutError):
                    backlog.add(await asyncio.wait_for(listener.queue.get(), POLL_S))
            # events were lost (the hub's queue, or the backlog, overflowed): start again
            # from the present
            if listener.overflowed or not backlog.take(listener.queue):
                listener.overflowed = False
                _drain(listener.queue)
                backlog.clear()
                event = d.snapshot(resync=True)
            else:
                event = backlog.next()
            if event is None:
                if loop.time() - last_sent < IDLE_PING_S:
                    continue
                event = {"type": "ping", "ts": d.now()}
            await _send(ws, event, d)
            last_sent = loop.time()
    except TimeoutError:
        # It reads nothing: a close handshake would wait for it too. Drop the connection;
        # the page reconnects and starts again from a snapshot.
        log.warning("WebSocket client too slow (a send took over %.0f s): dropped", SEND_TIMEOUT_S)
        if transport is not None:
            transport.abort()
    except (ConnectionResetError, RuntimeError):
        pass  # the client went away


async def handler(request: web.Request) -> web.StreamResponse:
    user = current(request)
    if not origin_ok(request) or (user.via == "cookie" and "Origin" not in request.headers):
        dash(request).refused(request, "origin", user.name)
        return error(403, "origin", "WebSocket from another origin refused")
    d = dash(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=16 * 1024)
    if not ws.can_prepare(request).ok:
        return error(400, "bad_request", "this path takes a WebSocket upgrade")
    listener = d.port.subscribe()  # before the snapshot: no event falls in between
    sender = None
    try:
        await ws.prepare(request)
        d.sockets[ws] = user
        await d.audit("ward.viewed", user.name, {"via": "ws", "source": request.remote})
        sender = asyncio.create_task(
            _sender(d, ws, listener, request.transport, user), name="ws-sender"
        )
        async for _msg in ws:
            pass  # the page sends nothing that matters; pongs are aiohttp's business
    finally:
        d.port.unsubscribe(listener)
        d.sockets.pop(ws, None)
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
    return ws


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every page the server is going away (it will reconnect)."""
    from .core import DASH

    for ws in list(app[DASH].sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/ws", handler)
