"""What deploy/ ships holds together: the ACL's service accounts are what `broker add`
writes, the daemon's example config loads and matches the broker's limits, the systemd
unit restarts a failed or stuck daemon, and `broker add` keeps the files consistent."""

from __future__ import annotations

import base64
import configparser
import hashlib
import re
import shutil
import subprocess
import sys

import pytest

from commands import broker as broker_cmd
from monitor import config
from monitor.daemon import WATCHDOG_EVERY_S
from tests.test_broker_auth import make_certs
from tests.test_config import ROOT

DEPLOY = ROOT / "deploy"


def acl_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = None
    for line in text.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            blocks[user] = []
        elif line.startswith("topic ") and user:
            blocks[user].append(line)
        elif not line.strip():
            user = None
    return blocks


def test_the_shipped_acl_is_what_broker_add_writes():
    blocks = acl_blocks((DEPLOY / "mosquitto" / "acl").read_text())
    for user, role in (("crswatch", "daemon"), ("dashboard", "dashboard"), ("pager", "pager")):
        assert blocks[user] == broker_cmd.acl_lines(role, "crs")
    assert blocks["ehr"] == broker_cmd.acl_lines("ehr", "crs")
    # nobody but the daemon reads inbound topics or writes outbound ones
    for user, lines in blocks.items():
        if user != "crswatch":
            assert not any(re.search(r"read .*/(vitals|admit|care|hl7|fhir)$", x) for x in lines)
            assert not any(re.search(r"write .*/(state|alerts|rejected|status)$", x) for x in lines)
    # and no anonymous line: nothing before the first user
    first = (DEPLOY / "mosquitto" / "acl").read_text().split("\nuser ", 1)[0]
    assert not re.search(r"^(topic|pattern) ", first, re.M)


def test_the_broker_config_is_locked():
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert settings["allow_anonymous"] == "false"
    assert settings["use_username_as_clientid"] == "true"
    assert {"password_file", "acl_file", "cafile", "certfile", "keyfile"} <= settings.keys()
    assert int(settings["message_size_limit"]) == config.BY_KEY["ingest.max_message_bytes"].default
    assert int(settings["max_packet_size"]) > int(settings["message_size_limit"])
    assert int(settings["max_queued_messages"]) > 1000 and "max_queued_bytes" in settings
    # one listener, after which the listener settings come (or Mosquitto opens 1883 too)
    assert re.findall(r"^listener .*$", conf, re.M) == ["listener 8883"]
    assert conf.index("listener 8883") < conf.index("use_username_as_clientid")


def test_the_example_daemon_config_loads(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl")
    ca, _, _ = make_certs(tmp_path)
    text = (DEPLOY / "crswatch.toml").read_text().replace("/etc/crswatch/ca.crt", str(ca))
    (tmp_path / "c.toml").write_text(text)
    cfg = config.load(tmp_path / "c.toml")
    assert cfg["mqtt.client_id"] == cfg["mqtt.username"]  # what the broker forces
    assert cfg["mqtt.tls_ca"] and cfg["mqtt.port"] == 8883


def test_the_systemd_unit_restarts_a_failed_or_stuck_daemon(tmp_path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keep the case of systemd's keys
    unit.read(DEPLOY / "systemd" / "crswatch.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a bad config: no restart loop
    watchdog = float(service["WatchdogSec"])
    assert watchdog >= 10 * WATCHDOG_EVERY_S
    assert service["ExecStart"].split()[1:3] == ["main.py", "run"]
    if shutil.which("systemd-analyze"):
        r = subprocess.run(
            ["systemd-analyze", "verify", str(DEPLOY / "systemd" / "crswatch.service")],
            capture_output=True,
            text=True,
        )
        assert "Unknown key" not in r.stderr and "Unknown section" not in r.stderr


def test_broker_add_replaces_a_users_block_and_keeps_the_others(tmp_path):
    acl, pw = tmp_path / "acl", tmp_path / "passwd"
    shutil.copy(DEPLOY / "mosquitto" / "acl", acl)
    args = {"passwd_file": pw, "acl_file": acl, "prefix": "crs"}
    broker_cmd.add("dev.w1.b1", "device", "first-password-x", ward="w1", bed="b1", **args)
    broker_cmd.add("dev.w2.b7", "device", "other-password-x", ward="w2", bed="b7", **args)
    broker_cmd.add("dev.w1.b1", "device", "second-password", ward="w1", bed="b2", **args)
    blocks = acl_blocks(acl.read_text())
    assert blocks["dev.w1.b1"] == [f"topic write crs/w1/b2/{k}" for k in broker_cmd.DEVICE_KINDS]
    assert blocks["dev.w2.b7"][0] == "topic write crs/w2/b7/vitals"
    assert blocks["crswatch"] == broker_cmd.acl_lines("daemon", "crs")
    assert acl.read_text().count("user dev.w1.b1") == 1 and "\n\n\n" not in acl.read_text()
    entries = dict(line.split(":", 1) for line in pw.read_text().splitlines())
    assert set(entries) == {"dev.w1.b1", "dev.w2.b7"}
    _, kind, rounds, salt, digest = entries["dev.w1.b1"].split("$")
    expected = hashlib.pbkdf2_hmac(
        "sha512", b"second-password", base64.b64decode(salt), int(rounds), 64
    )
    assert kind == "7" and base64.b64decode(digest) == expected
    assert oct(pw.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["d1", "--role", "device", "--ward", "w1"], "a device needs --bed"),
        (["d1", "--role", "device", "--ward", "w 1", "--bed", "b"], "--ward 'w 1'"),
        (["a/b", "--role", "pager"], "user name 'a/b'"),
        (["p", "--role", "pager"], "at least 12 characters"),
    ],
)
def test_broker_add_mistakes_exit_2_with_one_line(argv, message, tmp_path):
    r = subprocess.run(
        [sys.executable, "main.py", "broker", "add", *argv, "--password-stdin"]
        + ["--passwd-file", str(tmp_path / "pw"), "--acl-file", str(tmp_path / "acl")],
        cwd=ROOT,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert message in r.stderr
    assert not (tmp_path / "acl").exists()
