"""Broker credentials and TLS come from the config: the daemon connects to a Mosquitto
that demands them, and is refused (503) with wrong ones."""

from __future__ import annotations

import shutil
import subprocess

import aiomqtt
import pytest

from monitor.daemon import Daemon
from tests.conftest import daemon_config, wait_for
from tests.support.brokers import TestBroker
from tests.support.db import count
from tests.test_health import health

pytestmark = pytest.mark.skipif(
    not shutil.which("mosquitto_passwd"), reason="needs Mosquitto's mosquitto_passwd"
)


def password_broker(tmp_path) -> TestBroker:
    pw = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pw), "crswatch", "s3cret"],
        check=True,
        capture_output=True,
    )
    return TestBroker(
        tmp_path / "b",
        kind="mosquitto",
        extra_conf=("allow_anonymous false", f"password_file {pw}"),
    ).start()


async def test_username_and_password_from_the_config(tmp_path, make_daemon):
    broker = password_broker(tmp_path)
    try:
        good = daemon_config(broker, tmp_path, mqtt={"username": "crswatch", "password": "s3cret"})
        d = await make_daemon(good)
        assert (await health(d))[0] == 200
    finally:
        broker.stop()


async def test_wrong_password_is_refused_and_unhealthy(tmp_path, make_daemon):
    broker = password_broker(tmp_path)
    try:
        bad = daemon_config(broker, tmp_path, mqtt={"username": "crswatch", "password": "wrong"})
        d = Daemon(bad)
        await d.start()
        try:
            await wait_for(
                lambda: d.metrics.registry.get_sample_value("crswatch_broker_connected") == 0,
                what="refused",
            )
            status, body = await health(d)
            assert status == 503 and "broker: not connected" in body["problems"]
        finally:
            await d.stop()
    finally:
        broker.stop()


def make_certs(tmp_path):
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=CRSWatch test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )
    return tmp_path / "ca.crt", tmp_path / "server.crt", tmp_path / "server.key"


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to make certificates")
async def test_tls_with_the_ca_from_the_config(tmp_path, make_daemon):
    ca, cert, key = make_certs(tmp_path)
    broker = TestBroker(
        tmp_path / "b",
        kind="mosquitto",
        extra_conf=(f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"),
    )
    broker.start()
    try:
        cfg = daemon_config(broker, tmp_path, mqtt={"tls_ca": str(ca)})
        d = await make_daemon(cfg)
        assert (await health(d))[0] == 200
        # and it really is TLS: a plain connection to that port fails
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(broker.host, broker.port, timeout=3):
                pass
        assert count(d.cfg["storage.path"], "heartbeat") == 1
    finally:
        broker.stop()
