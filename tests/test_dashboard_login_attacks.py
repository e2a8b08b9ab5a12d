"""Issue 15, 1.-3.: password guessing against a running daemon, the way an attacker on the
ward network would: bursts, one address against a nurse, a flood of logins. Addresses
come through a trusted proxy's X-Forwarded-For (the daemon trusts 127.0.0.1 here)."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from dashboard.guard.throttle import SOURCE_FREE
from dashboard.login import ACCOUNT_MAX_FAILURES
from tests.support.dashboard import PASSWORD, Client, admit, is_error, make_user, url
from tests.support.db import query


def slow_clock():
    """The daemon's clock at a thousandth of the wall clock's speed: a throttle's wait of
    a second lasts a quarter of an hour of test time, however slow the machine."""
    start = time.time()
    return lambda: start + (time.time() - start) / 1000


def proxied(**http) -> dict:
    return {"http": {"port": 0, "trusted_proxies": ["127.0.0.1"], **http}}


async def attempt(s: aiohttp.ClientSession, d, name: str, password: str, source: str):
    async with s.post(
        url(d, "/api/login"),
        json={"username": name, "password": password},
        headers={"X-Forwarded-For": source},
    ) as r:
        return r.status, await r.json(), r.headers


async def test_a_burst_of_guesses_cannot_defeat_the_account_lockout(make_daemon):
    """Before: of 40 simultaneous guesses some were counted after a lock had cleared the
    count; the account locked and unlocked within the burst, and the right password got
    in. Now the account's logins run one at a time: exactly ACCOUNT_MAX_FAILURES guesses
    are checked, every later one is refused without a check, and the account stays locked
    (the right password included)."""
    d = await make_daemon(**proxied(login_queue=100))
    make_user(d, "nina", "nurse")
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(
            *(attempt(s, d, "nina", f"guess {i}", f"10.0.{i}.7") for i in range(40))
        )
        statuses = sorted(r[0] for r in results)
        assert statuses.count(401) == ACCOUNT_MAX_FAILURES - 1, statuses
        assert statuses.count(423) == 40 - (ACCOUNT_MAX_FAILURES - 1), statuses
        assert all(is_error(body) for _, body, _ in results)
        status, body, _ = await attempt(s, d, "nina", PASSWORD, "10.99.0.1")
        assert status == 423 and is_error(body, "locked")
    [(failed, locked_until)] = query(
        d.cfg["storage.path"], "SELECT failed_logins, locked_until FROM users"
    )
    assert locked_until is not None and locked_until > time.time()
    locks = query(d.cfg["storage.path"], "SELECT actor FROM audit WHERE name='user.locked'")
    assert locks == [("system",)]  # locked once, not seven times


async def test_one_address_cannot_lock_a_nurse_out(make_daemon):
    """Before: five anonymous requests locked any nurse out for 15 minutes. Now one address
    gets SOURCE_FREE tries, then must wait (429, Retry-After, doubling): far from the
    account's own limit; the nurse, elsewhere, logs in."""
    d = await make_daemon(clock=slow_clock(), **proxied(login_queue=100))
    make_user(d, "nina", "nurse")
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(
            *(attempt(s, d, "nina", f"guess {i}", "10.6.6.6") for i in range(30))
        )
        statuses = [r[0] for r in results]
        assert set(statuses) <= {401, 429} and statuses.count(401) <= SOURCE_FREE, statuses
        throttled = [r for r in results if r[0] == 429]
        assert throttled and all(is_error(b, "throttled") for _, b, _ in throttled)
        assert all(int(h["Retry-After"]) >= 1 for _, _, h in throttled)
        status, _, _ = await attempt(s, d, "nina", "one more", "10.6.6.6")
        assert status == 429  # still waiting: the guesser does not get another check
        # the nurse at her own workstation: the right password works
        status, body, _ = await attempt(s, d, "nina", PASSWORD, "10.1.2.3")
        assert status == 200 and body["user"]["name"] == "nina"
        # even the guesser's address gets nowhere with it now: throttled, not checked
        status, _, _ = await attempt(s, d, "nina", PASSWORD, "10.6.6.6")
        assert status == 429


async def test_a_spoofed_forwarded_for_is_ignored_without_a_trusted_proxy(make_daemon):
    d = await make_daemon(clock=slow_clock())  # no trusted proxy: the peer is the address
    make_user(d, "nina", "nurse")
    async with aiohttp.ClientSession() as s:
        statuses = [
            (await attempt(s, d, "nina", f"guess {i}", f"10.7.{i}.1"))[0]
            for i in range(SOURCE_FREE + 1)
        ]
    assert statuses == [401] * SOURCE_FREE + [429]


async def test_a_login_flood_is_bounded_and_the_patient_view_keeps_answering(
    make_daemon, publisher
):
    """Before: 60 anonymous logins filled the thread pool the patient view uses (17.5 s
    for the view, 529 MB). Now password checks have their own bounded pool and queue:
    the excess is answered 503 at once, and the patient view answers during the flood."""
    d = await make_daemon(**proxied(login_workers=1, login_queue=9))
    await admit(publisher, d.cfg.prefix, "w1", "b1", "P1")
    doctor = await Client.as_user(d, "phil", "physician")
    order: list[str] = []
    try:
        for _ in range(200):  # the admission has reached the store
            if (await doctor.get("/api/patients/P1"))[0] == 200:
                break
            await asyncio.sleep(0.05)

        async with aiohttp.ClientSession() as s:

            async def flood_one(i: int):
                result = await attempt(s, d, f"nobody{i}", "not a password", f"10.8.{i}.1")
                order.append("login")
                return result

            async def view():
                await asyncio.sleep(0.05)  # once the flood is in
                status, body = await doctor.get("/api/patients/P1")
                order.append("view")
                return status, body

            *flood, (status, body) = await asyncio.gather(
                *(flood_one(i) for i in range(60)), view()
            )
        assert status == 200 and body["patient_id"] == "P1"
        statuses = [r[0] for r in flood]
        assert set(statuses) <= {401, 503}
        busy = [b for st, b, _ in flood if st == 503]
        assert len(busy) >= 60 - 10 - 10 and all(is_error(b, "busy") for b in busy)
        assert order.index("view") < len(order) - 1  # answered before the flood was over
        # after the flood, logins work again
        nurse = await Client.as_user(d, "nina", "nurse")
        assert (await nurse.get("/api/me"))[0] == 200
        await nurse.close()
    finally:
        await doctor.close()
