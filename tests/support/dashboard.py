"""Helpers shared by the dashboard tests (no tests here): accounts, logins, admissions.

Accounts are created the way `python main.py user add` does it: straight into the
daemon's SQLite file from outside the daemon.
"""

from __future__ import annotations

import time

import aiohttp

from monitor.store.accounts import add_user

PASSWORD = "correct horse battery"
# a patient in trouble on every vital (NEWS2 high, CRS with hypotension and hypoxaemia)
SICK = {
    "hr": 136,
    "rr": 27,
    "spo2": 89,
    "sbp": 84,
    "dbp": 48,
    "map": 60,
    "temp_c": 39.6,
    "acvpu": "A",
}


def url(d, path: str) -> str:
    return f"http://127.0.0.1:{d.http_port}{path}"


def new_session() -> aiohttp.ClientSession:
    """A client session that keeps cookies from 127.0.0.1 (aiohttp's default jar does
    not keep cookies of IP addresses)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def make_user(d, name: str, role: str, password: str = PASSWORD) -> str:
    add_user(d.cfg["storage.path"], name, role, password)
    return name


async def login(d, name: str, password: str = PASSWORD) -> tuple[aiohttp.ClientSession, dict]:
    """A cookie session logged in as `name`, and the login answer ({token, csrf, ...})."""
    session = new_session()
    async with session.post(
        url(d, "/api/login"), json={"username": name, "password": password}
    ) as r:
        assert r.status == 200, await r.text()
        return session, await r.json()


class Client:
    """A logged-in browser-like client: cookie + X-CSRF-Token on state changes."""

    def __init__(self, d, session: aiohttp.ClientSession, info: dict):
        self.d, self.session, self.info = d, session, info

    @classmethod
    async def as_user(cls, d, name: str, role: str) -> Client:
        make_user(d, name, role)
        session, info = await login(d, name)
        return cls(d, session, info)

    async def get(self, path: str) -> tuple[int, object]:
        async with self.session.get(url(self.d, path)) as r:
            return r.status, await _json(r)

    async def post(self, path: str, body: object = None, csrf: bool = True):
        headers = {"X-CSRF-Token": self.info["csrf"]} if csrf else {}
        async with self.session.post(url(self.d, path), json=body, headers=headers) as r:
            return r.status, await _json(r)

    async def close(self) -> None:
        await self.session.close()


async def _json(r: aiohttp.ClientResponse):
    if r.content_type == "application/json":
        return await r.json()
    return await r.text()


def is_error(body: object, code: str | None = None) -> bool:
    """The one error shape: {"error": {"code", "message"}} and nothing else."""
    ok = (
        isinstance(body, dict)
        and set(body) == {"error"}
        and set(body["error"]) == {"code", "message"}
        and isinstance(body["error"]["message"], str)
        and body["error"]["message"]
    )
    return bool(ok) and (code is None or body["error"]["code"] == code)


async def admit(
    publisher,
    p: str,
    ward: str = "w1",
    bed: str = "b1",
    patient: str = "P1",
    now: float | None = None,
) -> None:
    now = now or time.time()
    await publisher(
        f"{p}/{ward}/{bed}/admit",
        {
            "patient_id": patient,
            "ts": now - 3600,
            "age": 41,
            "product": "CD19 CAR-T",
            "indication": "DLBCL",
            "infusion_ts": now - 2 * 86400 - 3600,
            "spo2_scale": 1,
        },
    )
