"""Server-rendered HTML shells; the small JS modules in static/js fill them from the API and
the WebSocket. No inline script or style anywhere (the CSP allows only 'self')."""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from pathlib import Path
from string import Template
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from monitor.clinical.thresholds import DEVICE_NAME, O2_DEVICES

from .alerts_api import MAX_SNOOZE_S
from .auth import LOGIN_COOKIE, authenticate, current
from .core import dash
from .login import new_login_token
from .ws import clock_fields

TEMPLATES = Path(__file__).parent / "templates"
UPLOT = (
    '<link rel="stylesheet" href="/static/vendor/uplot/uPlot.min.css">\n'
    '<script src="/static/vendor/uplot/uPlot.iife.min.js" defer></script>'
)


# The oxygen devices of the care form, from their one declaration (nasal cannula first
# chosen: the commonest start of oxygen on a ward).
O2_OPTIONS = "\n".join(
    f'            <option value="{d}"{" selected" if d == "nasal_cannula" else ""}>'
    f"{DEVICE_NAME[d][0].upper()}{DEVICE_NAME[d][1:]}</option>"
    for d in O2_DEVICES
)


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _clock(request: web.Request) -> dict[str, str]:
    """The daemon's clock and the ward's zone (the zone its reasons are written in), so
    the page shows ages and times right from its first paint; the longest snooze the
    server grants, so the page offers no more."""
    d = dash(request)
    fields = clock_fields(d)
    settings = d.port.alert_settings()
    zone = getattr(settings, "timezone", "UTC") or "UTC"
    longest = min(MAX_SNOOZE_S, getattr(settings, "max_snooze_s", MAX_SNOOZE_S))
    now = datetime.fromtimestamp(fields["now"], ZoneInfo(zone))
    return {
        "now": f"{fields['now']:.3f}",
        "rate": f"{fields['rate']:g}",
        "zone": _esc(zone),
        "max_snooze": f"{longest:.0f}",
        "clock": _esc(now.strftime("%-d %b %H:%M:%S %Z")),
    }


def render(
    request: web.Request,
    page: str,
    title: str,
    body: str,
    script: str,
    head: str = "",
    main_attrs: str = "",
) -> web.Response:
    user = current(request)
    admin = (
        '<a href="/users" class="{}">Accounts</a>'.format("active" if page == "users" else "")
        if user.can("users")
        else ""
    )
    text = _template("shell.html").substitute(
        csrf=_esc(user.csrf),
        title=_esc(title),
        head=head,
        page=page,
        user=_esc(user.name),
        role=_esc(user.role),
        nav_ward="active" if page == "ward" else "",
        nav_oncall="active" if page in ("oncall", "alert") else "",
        nav_admin=admin,
        main_attrs=main_attrs,
        body=body,
        scripts=f'<script type="module" src="/static/js/{script}"></script>',
        **_clock(request),
    )
    return web.Response(text=text, content_type="text/html")


def safe_next(value: str | None) -> str:
    """Only a path on this server (never //host or a scheme) after logging in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


async def login_page(request: web.Request) -> web.Response:
    nxt = safe_next(request.query.get("next"))
    if authenticate(request) is not None:
        raise web.HTTPFound(nxt)
    token = new_login_token()
    text = _template("login.html").substitute(csrf=_esc(token), next=_esc(nxt))
    resp = web.Response(text=text, content_type="text/html")
    resp.set_cookie(
        LOGIN_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or dash(request).public_url.startswith("https:"),
        max_age=3600,
    )
    return resp


async def ward_page(request: web.Request) -> web.Response:
    return render(request, "ward", "Ward overview", _template("ward.html").template, "ward.js")


async def patient_page(request: web.Request) -> web.Response:
    pid = request.match_info["id"]
    body = _template("patient.html").substitute(patient_id=_esc(pid), o2_options=O2_OPTIONS)
    return render(
        request,
        "patient",
        f"Patient {pid}",
        body,
        "patient.js",
        head=UPLOT,
        main_attrs=f'data-patient-id="{_esc(pid)}"',
    )


async def oncall_page(request: web.Request) -> web.Response:
    return render(request, "oncall", "On call", _template("oncall.html").template, "oncall.js")


async def alert_page(request: web.Request) -> web.Response:
    aid = request.match_info["id"]
    return render(
        request,
        "alert",
        "Alert",
        _template("alert.html").template,
        "alert.js",
        main_attrs=f'data-alert-id="{_esc(aid)}"',
    )


async def users_page(request: web.Request) -> web.Response:
    if not current(request).can("users"):
        raise web.HTTPForbidden(reason="Accounts are for admins")
    return render(request, "users", "Accounts", _template("users.html").template, "users.js")


async def favicon(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/static/favicon.svg")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", ward_page)
    router.add_get("/login", login_page)
    router.add_get("/patients/{id}", patient_page)
    router.add_get("/oncall", oncall_page)
    router.add_get("/alerts/{id}", alert_page)
    router.add_get("/users", users_page)
    router.add_get("/favicon.ico", favicon)
