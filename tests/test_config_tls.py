"""TLS settings that cannot work, or that would silently connect in plain text, are
refused at start with one clear line and exit status 2."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from monitor import config
from tests.test_broker_auth import make_certs
from tests.test_config import ROOT


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl")
    return make_certs(tmp_path_factory.mktemp("certs"))


def refused(mqtt: dict) -> str:
    with pytest.raises(config.ConfigError) as e:
        config.from_dict({"mqtt": mqtt})
    return str(e.value)


def test_cert_and_key_without_ca_would_be_plain_text(certs):
    ca, cert, key = certs
    msg = refused({"tls_cert": str(cert), "tls_key": str(key)})
    assert "mqtt.tls_ca is empty: the daemon would connect without TLS" in msg
    assert "without TLS" in refused({"tls_key": str(key)})


def test_key_without_cert(certs):
    ca, cert, key = certs
    assert "mqtt.tls_key is set without mqtt.tls_cert" in refused(
        {"tls_ca": str(ca), "tls_key": str(key)}
    )


def test_missing_or_unreadable_files(certs, tmp_path):
    ca, cert, key = certs
    assert f"mqtt.tls_ca: no such file: {tmp_path}/nope.crt" in refused(
        {"tls_ca": str(tmp_path / "nope.crt")}
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert "mqtt.tls_ca: cannot be loaded" in refused({"tls_ca": str(junk)})
    assert "mqtt.tls_cert/mqtt.tls_key: cannot be loaded" in refused(
        {"tls_ca": str(ca), "tls_cert": str(junk), "tls_key": str(key)}
    )
    # a certificate with another's key
    assert "cannot be loaded" in refused(
        {"tls_ca": str(ca), "tls_cert": str(cert), "tls_key": str(ca.parent / "ca.key")}
    )


def test_password_without_user():
    assert "mqtt.password is set without mqtt.username" in refused({"password": "x"})


def test_a_working_tls_config_loads(certs):
    ca, cert, key = certs
    cfg = config.from_dict(
        {"mqtt": {"tls_ca": str(ca), "tls_cert": str(cert), "tls_key": str(key)}}
    )
    assert config.tls_context(cfg.values) is not None


def test_run_refuses_it_with_one_line_and_exit_2(certs, tmp_path):
    ca, cert, key = certs
    conf = tmp_path / "c.toml"
    conf.write_text(f'[mqtt]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    r = subprocess.run(
        [sys.executable, "main.py", "run", "--config", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "would connect without TLS" in r.stderr
