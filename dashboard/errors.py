"""Middlewares: every API error in the one error shape (monitor.ops.http.error), exceptions
included; and the security headers (a Content-Security-Policy allowing only 'self')."""

from __future__ import annotations

import asyncio
import html
import logging

from aiohttp import web

from monitor.ops.http import error

from .auth import USER, is_api
from .core import ApiError, dash

log = logging.getLogger("crswatch.dashboard")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def _api_error(request: web.Request, e: web.HTTPException) -> web.Response:
    if e.status == 404:
        message = f"no such API path: {request.path}"
    elif e.status == 405:
        allowed = ", ".join(sorted(getattr(e, "allowed_methods", ()) or ()))
        message = f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    else:
        message = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
    resp = error(e.status, CODES.get(e.status, "http_error"), message)
    if "Allow" in e.headers:
        resp.headers["Allow"] = e.headers["Allow"]
    return resp


def error_page(status: int, title: str, detail: str = "") -> web.Response:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{status} {html.escape(title)} - CRSWatch</title>"
        f'<link rel="stylesheet" href="/static/css/app.css"></head>'
        f'<body class="error-page"><main><h1>{status} {html.escape(title)}</h1>'
        f'<p>{html.escape(detail)}</p><p><a href="/">Back to the ward</a></p>'
        f"</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


@web.middleware
async def errors(request: web.Request, handler):
    api = is_api(request.path)
    try:
        return await handler(request)
    except ApiError as e:
        if e.status == 403:
            user = request.get(USER)
            dash(request).refused(request, e.code, user.name if user else None)
        return error(e.status, e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            return web.Response(status=e.status, headers=e.headers)
        if api:
            return _api_error(request, e)
        return error_page(e.status, e.reason, "There is no such page." if e.status == 404 else "")
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        if api:
            return error(500, "internal", "internal error (logged by the daemon)")
        return error_page(500, "Internal error", "The daemon logged it.")


@web.middleware
async def security_headers(request: web.Request, handler):
    resp = await handler(request)
    if not resp.prepared:  # a WebSocket or streamed answer has sent its headers already
        for name, value in HEADERS.items():
            resp.headers.setdefault(name, value)
        if request.secure:  # over https (a trusted proxy's included): stay on it
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.path.startswith("/static/"):
            resp.headers.setdefault("Cache-Control", "no-cache")  # revalidate: no stale JS
        elif request.path.startswith("/api/") or "text/html" in resp.content_type:
            resp.headers.setdefault("Cache-Control", "no-store")
    return resp
