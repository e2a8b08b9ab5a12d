"""One hospital over two daemons split by ward (hospital/, docs/scale-out.md): one login,
one dashboard, one live feed, each action routed to the daemon that owns the ward; a
daemon that does not answer is said so, never shown as a quiet ward; the supervisor starts
a daemon that died again. Real daemons (their own SQLite files), a real broker, a real
browser."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from hospital.app import make_app
from hospital.config import Daemon as DaemonEntry
from hospital.config import Hospital, split_errors
from hospital.config import load as load_hospital
from hospital.supervisor import Processes
from monitor.config import ConfigError
from monitor.ops.supervisor import Supervisor
from tests.conftest import daemon_config, wait_for
from tests.support.brokers import free_port
from tests.support.browser import CHROMIUM, Watch, login
from tests.support.dashboard import PASSWORD, SICK, admit, make_user, new_session, url
from tests.support.db import query

NORMAL = {
    "hr": 78,
    "rr": 14,
    "spo2": 97,
    "sbp": 124,
    "dbp": 76,
    "map": 92,
    "temp_c": 36.8,
    "acvpu": "A",
}


def entry(name: str, cfg) -> DaemonEntry:
    return DaemonEntry(name, Path(f"/nonexistent/{name}.toml"), cfg)


def configs(broker, tmp_path, prefix: str, ports: tuple[int, int]):
    return [
        daemon_config(
            broker,
            tmp_path / name,
            mqtt={"topic_prefix": prefix, "client_id": f"crswatch-{prefix}-{name}", "wards": [w]},
            http={"port": port, "trusted_proxies": ["127.0.0.1"]},
        )
        for name, w, port in (("one", "w1", ports[0]), ("two", "w2", ports[1]))
    ]


class Front:
    """The front in this process, on a free port (url() of tests.support takes it)."""

    def __init__(self, hospital: Hospital):
        self.hospital = hospital

    async def __aenter__(self):
        self.runner = web.AppRunner(make_app(self.hospital))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


async def log_in(front, name: str, password: str = PASSWORD, headers: dict | None = None):
    s = new_session()
    async with s.get(url(front, "/login")) as r:
        assert r.status == 200
    token = next(c.value for c in s.cookie_jar if c.key == "crswatch_login")
    async with s.post(
        url(front, "/api/login"),
        json={"username": name, "password": password},
        headers={"X-CSRF-Token": token, "Origin": url(front, ""), **(headers or {})},
    ) as r:
        return s, r.status, await r.json()


async def get(s, front, path: str):
    async with s.get(url(front, path)) as r:
        return r.status, await r.json()


async def post(s, front, path: str, body=None, csrf: str | None = None):
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with s.post(url(front, path), json=body, headers=headers) as r:
        return r.status, await r.json()


async def close_code(ws) -> int:
    """How the front closed the page's socket (the daemons' pings skipped)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 30)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data
        assert msg.type == aiohttp.WSMsgType.TEXT and orjson.loads(msg.data)["type"] == "ping"


# -- the split is checked -------------------------------------------------------------------


def test_the_hospital_file_refuses_a_split_that_would_lose_or_double_a_ward(broker, tmp_path):
    a, b = configs(broker, tmp_path, "cfg", (18101, 18102))
    assert split_errors([entry("a", a), entry("b", b)]) == []
    both = b.replace(**{"mqtt.wards": ["w2", "w1"]})
    assert split_errors([entry("a", a), entry("b", both)]) == ["ward 'w1' is on both a and b"]
    every = b.replace(**{"mqtt.wards": ["+"]})
    assert any("'+'" in e for e in split_errors([entry("a", a), entry("b", every)]))
    same_id = b.replace(**{"mqtt.client_id": a["mqtt.client_id"]})
    assert any("mqtt.client_id" in e for e in split_errors([entry("a", a), entry("b", same_id)]))
    same_db = b.replace(**{"storage.path": a["storage.path"]})
    assert any("storage.path" in e for e in split_errors([entry("a", a), entry("b", same_db)]))
    any_port = b.replace(**{"http.port": 0})
    assert any(
        "http.port must be fixed" in e for e in split_errors([entry("a", a), entry("b", any_port)])
    )
    untrusting = b.replace(**{"http.trusted_proxies": []})
    assert any(
        "trusted_proxies" in e for e in split_errors([entry("a", a), entry("b", untrusting)])
    )

    # and from files, as `main.py hospital` reads them
    (tmp_path / "a.toml").write_text(
        '[mqtt]\nclient_id = "a"\nwards = ["icu"]\n[storage]\npath = "a.db"\n'
        '[http]\nport = 8081\ntrusted_proxies = ["127.0.0.1"]\n'
    )
    (tmp_path / "b.toml").write_text(
        '[mqtt]\nclient_id = "b"\nwards = ["icu", "haem"]\n[storage]\npath = "b.db"\n'
        '[http]\nport = 8082\ntrusted_proxies = ["127.0.0.1"]\n'
    )
    (tmp_path / "hospital.toml").write_text('[hospital]\ndaemons = ["a.toml", "b.toml"]\n')
    with pytest.raises(ConfigError, match="ward 'icu' is on both a and b"):
        load_hospital(tmp_path / "hospital.toml")
    (tmp_path / "b.toml").write_text((tmp_path / "b.toml").read_text().replace('"icu", ', ""))
    h = load_hospital(tmp_path / "hospital.toml")
    assert [(d.name, d.wards, d.url) for d in h.daemons] == [
        ("a", ("icu",), "http://127.0.0.1:8081"),
        ("b", ("haem",), "http://127.0.0.1:8082"),
    ]
    assert h.owner("haem").name == "b" and h.owner("onc") is None
    # two daemons' files of one name (ward-a/crswatch.toml, ward-b/crswatch.toml): named by
    # their folders too
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / f"{name}.toml").rename(tmp_path / name / "crswatch.toml")
    (tmp_path / "hospital.toml").write_text(
        '[hospital]\ndaemons = ["a/crswatch.toml", "b/crswatch.toml"]\n'
    )
    assert [d.name for d in load_hospital(tmp_path / "hospital.toml").daemons] == [
        "a/crswatch",
        "b/crswatch",
    ]


# -- one dashboard --------------------------------------------------------------------------


async def test_one_login_one_feed_and_every_action_on_the_daemon_that_owns_the_ward(
    broker, tmp_path, make_daemon, publisher
):
    prefix = "hosp"
    one, two = [
        await make_daemon(c) for c in configs(broker, tmp_path, prefix, (free_port(), free_port()))
    ]
    for d in (one, two):
        make_user(d, "nina", "nurse")
    make_user(one, "solo", "nurse")  # on one daemon only
    now = time.time()
    for ward in ("w1", "w2"):
        await admit(publisher, prefix, ward, "b1", f"P-{ward}", now - 3600)
        await publisher(f"{prefix}/{ward}/b1/vitals", {"ts": now - 30, **NORMAL})
    await wait_for(lambda: one.ward.states() and two.ward.states(), what="both beds graded")

    # the front behind a TLS proxy on 127.0.0.1: the client's address goes on to the daemons
    hospital = Hospital(
        "127.0.0.1", 0, "", ("127.0.0.1",), (entry("one", one.cfg), entry("two", two.cfg))
    )
    async with Front(hospital) as front:
        # an account missing on one daemon: refused, said so, and no session left behind
        s, status, body = await log_in(front, "solo")
        assert (status, body["error"]["code"]) == (502, "login_incomplete")
        assert "two" in body["error"]["message"]
        assert query(one.cfg["storage.path"], "SELECT count(*) FROM sessions") == [(0,)]
        await s.close()
        s, status, body = await log_in(front, "nina", "wrong password")
        assert (status, body["error"]["code"]) == (401, "bad_credentials")
        await s.close()

        s, status, info = await log_in(front, "nina", headers={"X-Forwarded-For": "203.0.113.9"})
        assert status == 200 and info["user"] == {"name": "nina", "role": "nurse"}
        for d in (one, two):  # each daemon saw the user's address (its login throttle's key)
            db = d.cfg["storage.path"]
            await wait_for(
                lambda db=db: query(
                    db, "SELECT detail FROM audit WHERE name='user.login' AND actor='nina'"
                ),
                what="the login audited",
            )
            [(detail,)] = query(
                db, "SELECT detail FROM audit WHERE name='user.login' AND actor='nina'"
            )
            assert orjson.loads(detail)["source"] == "203.0.113.9"
        # one session per daemon, none of their tokens given to the browser
        tokens = {c.value for c in s.cookie_jar if c.key == "crswatch_session"}
        assert tokens == {info["token"]}
        for d in (one, two):
            assert query(d.cfg["storage.path"], "SELECT username FROM sessions") == [("nina",)]

        assert await get(s, front, "/api/wards") == (200, ["w1", "w2"])
        assert (await get(s, front, "/healthz"))[0] == 200
        status, beds = await get(s, front, "/api/beds")
        assert [(b["ward"], b["patient_id"]) for b in beds] == [("w1", "P-w1"), ("w2", "P-w2")]
        status, beds = await get(s, front, "/api/beds?ward=w2")
        assert [b["patient_id"] for b in beds] == ["P-w2"]
        status, page = 0, ""
        async with s.get(url(front, "/")) as r:
            status, page = r.status, await r.text()
        assert status == 200 and info["csrf"] in page  # the pages carry the session's token

        async with s.ws_connect(url(front, "/ws"), headers={"Origin": url(front, "")}) as ws:
            snap = orjson.loads((await ws.receive()).data)
            assert snap["type"] == "snapshot"
            assert {(b["ward"], b["patient_id"]) for b in snap["beds"]} == {
                ("w1", "P-w1"),
                ("w2", "P-w2"),
            }
            assert snap["daemons"] == {"one": "up", "two": "up"}

            # w2 turns sick: its alert reaches the hospital's feed
            await publisher(
                f"{prefix}/w2/b1/vitals", [{"ts": time.time() - 2 + i, **SICK} for i in range(2)]
            )
            alert = None
            while alert is None:
                event = orjson.loads((await asyncio.wait_for(ws.receive(), 20)).data)
                if event["type"] == "alert" and event["alert"]["tier"] >= 2:  # asks for an ack
                    alert = event["alert"]
            assert (alert["ward"], alert["patient_id"]) == ("w2", "P-w2")

            # acknowledged at the front: the owning daemon's engine has it
            assert (await post(s, front, f"/api/alerts/{alert['id']}/ack"))[0] == 403  # no CSRF
            status, acked = await post(
                s, front, f"/api/alerts/{alert['id']}/ack", csrf=info["csrf"]
            )
            assert status == 200 and acked["acked_by"] == "nina"
            (mine,) = [a for a in two.alerts.engine.active() if a["id"] == alert["id"]]
            assert mine["acked_by"] == "nina"
            status, found = await get(s, front, f"/api/alerts/{alert['id']}")
            assert status == 200 and found["state"] == "acknowledged"

            # a daemon's own alert (a task of two's failed) names that daemon at the front
            calls: list[int] = []

            async def probe() -> None:
                calls.append(1)
                if len(calls) == 1:
                    raise RuntimeError("injected")
                await asyncio.Event().wait()

            two.supervise("probe", probe)
            own = None
            while own is None:
                event = orjson.loads((await asyncio.wait_for(ws.receive(), 20)).data)
                if event["type"] == "alert" and event["alert"]["kind"] == "task:probe":
                    own = event["alert"]
            assert (own["ward"], own["bed"], own["tier"]) == ("_daemon", "two", 3)
            status, listed = await get(s, front, "/api/alerts")
            assert [a["bed"] for a in listed if a["kind"] == "task:probe"] == ["two"]
            status, found = await get(s, front, f"/api/alerts/{own['id']}")
            assert (status, found["bed"]) == (200, "two")
            assert (await get(s, front, "/api/alerts/no-such-alert"))[0] == 404

        # care entered at w1's bed is stored by w1's daemon only
        status, care = await post(
            s,
            front,
            "/api/beds/w1/b1/care",
            {"type": "oxygen", "device": "nasal_cannula", "flow_lpm": 2},
            csrf=info["csrf"],
        )
        assert status == 201 and care["patient_id"] == "P-w1"
        assert query(one.cfg["storage.path"], "SELECT patient_id, type FROM care_events") == [
            ("P-w1", "oxygen")
        ]
        assert query(two.cfg["storage.path"], "SELECT count(*) FROM care_events") == [(0,)]
        status, body = await post(
            s, front, "/api/beds/w9/b1/care", {"type": "oxygen"}, info["csrf"]
        )
        assert status == 404 and "w9" in body["error"]["message"]
        status, history = await get(s, front, "/api/patients/P-w2")
        assert status == 200 and history["current"]["ward"] == "w2"

        # two's failed task keeps it unhealthy for a while: the front's /healthz names it
        status, health = await get(s, front, "/healthz")
        assert status == 503 and health["daemons"]["one"]["status"] == "ok"
        assert [p for p in health["problems"] if p.startswith("two (w2): task probe")]
        # an admin creates an account at the front: it exists on every daemon, and logs in
        for d in (one, two):
            make_user(d, "ada", "admin")
        a, status, admin = await log_in(front, "ada")
        assert status == 200
        account = {"username": "noor", "role": "nurse", "password": "night shift on ward w2"}
        status, made = await post(a, front, "/api/users", account, csrf=admin["csrf"])
        assert (status, made["username"]) == (201, "noor")
        for d in (one, two):
            assert query(d.cfg["storage.path"], "SELECT role FROM users WHERE username='noor'") == [
                ("nurse",)
            ]
        status, made = await post(a, front, "/api/users", account, csrf=admin["csrf"])
        assert (status, made["error"]["code"]) == (409, "exists")  # on both: in step
        await a.close()
        n, status, _ = await log_in(front, "noor", "night shift on ward w2")
        assert status == 200
        await n.close()

        # logging out at the front ends the session on every daemon
        assert (await post(s, front, "/api/logout", csrf=info["csrf"]))[0] == 200
        for d in (one, two):
            assert query(
                d.cfg["storage.path"], "SELECT count(*) FROM sessions WHERE username='nina'"
            ) == [(0,)]
        assert (await get(s, front, "/api/beds"))[0] == 401
        await s.close()


async def test_a_daemon_that_does_not_answer_is_a_notice_never_a_quiet_ward(
    broker, tmp_path, make_daemon, publisher
):
    prefix = "hospdown"
    cfg_one, cfg_two = configs(broker, tmp_path, prefix, (free_port(), free_port()))
    one = await make_daemon(cfg_one)
    make_user(one, "nina", "nurse")
    await admit(publisher, prefix, "w1", "b1", "P-w1", time.time() - 3600)
    await wait_for(lambda: one.ward.states(), what="w1's bed")
    hospital = Hospital("127.0.0.1", 0, "", (), (entry("one", one.cfg), entry("two", cfg_two)))
    async with Front(hospital) as front:
        # two is down: logging in needs every daemon
        s, status, body = await log_in(front, "nina")
        assert (status, body["error"]["code"]) == (502, "daemon_unreachable")
        assert "w2" in body["error"]["message"]
        status, health = await get(s, front, "/healthz")
        assert status == 503 and health["daemons"]["two"]["status"] == "unreachable"
        await s.close()

        two = await make_daemon(cfg_two)
        make_user(two, "nina", "nurse")
        s, status, info = await log_in(front, "nina")
        assert status == 200
        await two.stop()
        # two is frozen: its port accepts connections and never answers (a stopped process)
        frozen = await asyncio.start_server(
            lambda r, w: asyncio.sleep(3600), "127.0.0.1", cfg_two["http.port"]
        )
        async with s.ws_connect(url(front, "/ws"), headers={"Origin": url(front, "")}) as ws:
            snap = orjson.loads((await ws.receive(timeout=30)).data)  # within OPEN_TIMEOUT_S
            assert [b["ward"] for b in snap["beds"]] == ["w1"]
            (note,) = [a for a in snap["alerts"] if a["kind"] == "daemon_unreachable"]
            assert note["tier"] == 3 and note["detail"] == {"daemon": "two", "wards": ["w2"]}
            assert "w2" in note["message"] and "not shown" in note["message"]
            status, body = await get(s, front, "/api/beds")
            assert (status, body["error"]["code"]) == (502, "daemon_unreachable")
            status, body = await post(s, front, f"/api/alerts/{note['id']}/ack", csrf=info["csrf"])
            assert (status, body["error"]["code"]) == (409, "front_notice")

            # two comes back: the page is told to start again (RESYNC), and then sees w2
            frozen.close()
            await frozen.wait_closed()
            two = await make_daemon(cfg_two)
            assert await close_code(ws) == 4001
        async with s.ws_connect(url(front, "/ws"), headers={"Origin": url(front, "")}) as ws:
            snap = orjson.loads((await ws.receive()).data)
            assert snap["daemons"] == {"one": "up", "two": "up"}
            assert not [a for a in snap["alerts"] if a["kind"] == "daemon_unreachable"]
            # two stops again with the page open: the page is told at once (1012)
            await two.stop()
            assert await close_code(ws) == 1012
        await s.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
async def test_the_hospital_in_a_browser(broker, tmp_path, make_daemon, publisher, browser):
    from playwright.async_api import expect

    prefix = "hospweb"
    one, two = [
        await make_daemon(c) for c in configs(broker, tmp_path, prefix, (free_port(), free_port()))
    ]
    for d in (one, two):
        make_user(d, "nina", "nurse")
    now = time.time()
    for ward in ("w1", "w2"):
        await admit(publisher, prefix, ward, "b1", f"P-{ward}", now - 3600)
        await publisher(f"{prefix}/{ward}/b1/vitals", {"ts": now - 30, **NORMAL})
    await wait_for(lambda: one.ward.states() and two.ward.states(), what="both beds graded")
    hospital = Hospital("127.0.0.1", 0, "", (), (entry("one", one.cfg), entry("two", two.cfg)))
    async with Front(hospital) as front:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        watch = Watch(page)
        await login(page, front, "nina")
        await expect(page.locator("article.tile")).to_have_count(2)
        tile = page.locator("article.tile[data-ward=w2]")
        await expect(tile).to_contain_text("P-w2")
        await publisher(
            f"{prefix}/w2/b1/vitals", [{"ts": time.time() - 2 + i, **SICK} for i in range(2)]
        )
        ack = tile.locator("button[data-ack]")
        await expect(ack).to_be_visible(timeout=20000)
        await ack.click()
        await expect(tile.locator(".tile-alert")).to_contain_text(
            "Acknowledged by nina", timeout=15000
        )
        assert "nina" in [a["acked_by"] for a in two.alerts.engine.active() if a["ward"] == "w2"]
        # w2's daemon stops: the page says so, in the ward's alert strip, and w1 stays
        await two.stop()
        await expect(page.locator("#ward-alerts")).to_contain_text("does not answer", timeout=30000)
        await expect(page.locator("article.tile")).to_have_count(1)
        await page.screenshot(path=str(tmp_path / "hospital.png"))
        # it comes back: the front tells the page to start again (4001), without a banner
        await make_daemon(two.cfg)
        await expect(page.locator("article.tile")).to_have_count(2, timeout=30000)
        await expect(page.locator("#ward-alerts")).not_to_contain_text("does not answer")
        await expect(page.locator("#conn-banner")).to_be_hidden()
        await context.close()
        assert watch.errors == []


# -- one supervisor -------------------------------------------------------------------------


async def test_the_supervisor_starts_a_daemon_that_died_again_and_stops_it(broker, tmp_path):
    cfg = tmp_path / "w.toml"
    port = free_port()
    cfg.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nprotocol = "{broker.protocol}"\n'
        f'client_id = "crswatch-sup"\ntopic_prefix = "sup"\nwards = ["w1"]\n'
        f'[storage]\npath = "{tmp_path / "w.db"}"\n[http]\nport = {port}\n'
        'trusted_proxies = ["127.0.0.1"]\n'
    )
    from monitor import config

    d = DaemonEntry("w", cfg, config.load(cfg))
    failures: list[str] = []
    sup = Supervisor(
        backoff_min_s=0.1,
        on_failure=lambda name, exc: failures.append(str(exc)),
        stopping=asyncio.Event(),
    )
    procs = Processes((d,), sup)
    procs.start()

    async def healthy() -> bool:
        try:
            async with aiohttp.ClientSession() as s, s.get(f"{d.url}/healthz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    async def until(cond, what: str) -> None:
        for _ in range(300):
            if await cond():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(what)

    try:
        await until(healthy, "the daemon answers")
        first = procs.running["w"]
        first.send_signal(signal.SIGKILL)

        async def restarted() -> bool:
            return procs.running.get("w") not in (None, first)

        await until(restarted, "started again")
        assert failures == ["daemon w (wards w1) exited with status -9"]
        await until(healthy, "the new daemon answers")
        second = procs.running["w"]
    finally:
        await procs.stop()
    assert second.returncode == 0  # SIGTERM: it stopped as `main.py run` stops
    assert sup.fatal is None and failures == ["daemon w (wards w1) exited with status -9"]
