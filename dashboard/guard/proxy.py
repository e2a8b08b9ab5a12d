"""Who the client is and which site it asked for, behind a TLS-terminating proxy or not.

* `http.trusted_proxies`: only from those peers are `X-Forwarded-Proto` and
  `X-Forwarded-For` believed. The client is then the right-most X-Forwarded-For address
  that is not itself a trusted proxy; the scheme is the proxy's (https: Secure cookies and
  an `https://` origin). From any other peer both headers are ignored.
* `http.allowed_hosts`: the Host header must name this dashboard. A page of another site
  whose name was re-pointed at this address (DNS rebinding) sends its own name and gets
  421. An IP address is always accepted (a rebinding attack needs a name).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from monitor.ops.http import error

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def is_trusted(addr: str | None, trusted: tuple[Network, ...]) -> bool:
    ip = _ip(addr or "")
    return ip is not None and any(ip in n for n in trusted)


def client_of(peer: str | None, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer, or behind trusted proxies the right-most
    forwarded address that is not one of them."""
    if not is_trusted(peer, trusted):
        return peer or "?"
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if _ip(hop) is None:
            return peer or "?"  # garbage: believe nothing further
        if not is_trusted(hop, trusted):
            return str(_ip(hop))
    return peer or "?"


def host_name(host: str) -> str:
    """The name in a Host header, without its port, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def default_hosts(http_host: str, public_url: str) -> frozenset[str]:
    names = {"localhost", host_name(http_host)}
    if public_url:
        names.add((urlsplit(public_url).hostname or "").lower())
    return frozenset(n for n in names if n)


def host_ok(host: str, allowed: frozenset[str]) -> bool:
    name = host_name(host)
    return bool(name) and (name in allowed or _ip(name) is not None)


def middleware(trusted: tuple[Network, ...], allowed: frozenset[str]):
    @web.middleware
    async def forwarded(request: web.Request, handler):
        if not host_ok(request.headers.get("Host", ""), allowed):
            return error(
                421, "bad_host", "this dashboard does not answer to that host name (Host header)"
            )
        peer = request.remote
        if not is_trusted(peer, trusted):
            return await handler(request)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        changes: dict = {
            "remote": client_of(peer, request.headers.get("X-Forwarded-For", ""), trusted)
        }
        if proto in ("http", "https"):
            changes["scheme"] = proto
        return await handler(request.clone(**changes))

    return forwarded
