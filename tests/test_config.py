"""Every setting is declared once, documented in the README, and validated at load."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from alerts.config import SETTINGS as ALERT_SETTINGS
from monitor import config

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z0-9_]+)` \|", readme, re.M))
    declared = {s.key for s in config.SETTINGS} | {f"alerts.{k}" for k, _, _ in ALERT_SETTINGS}
    assert declared - documented == set(), "undocumented settings"
    assert documented - declared == set(), "README documents settings that do not exist"


def test_every_setting_has_a_help_text():
    assert all(len(s.help) > 10 for s in config.SETTINGS)


def test_shipped_config_loads_and_sets_spec_keys():
    cfg = config.load(ROOT / "config.toml")
    assert cfg["mqtt.topic_prefix"] == "crs" and cfg["mqtt.client_id"] == "crswatch"
    assert cfg.alerting.routes[2].escalate_after_s == 600
    assert cfg.alerting.routes[3].escalate_after_s == 300


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mqtt": {"prot": 1}}, "mqtt.prot: unknown key"),
        ({"mqt": {}}, "[mqt]: unknown section"),
        ({"mqtt": {"port": "1883"}}, "mqtt.port: expected int, got str"),
        ({"mqtt": {"embedded": 1}}, "mqtt.embedded: expected bool"),
        ({"mqtt": {"port": 70000}}, "not a port number"),
        ({"mqtt": {"protocol": "4"}}, "mqtt.protocol"),
        ({"mqtt": {"wards": ["ICU 1"]}}, "mqtt.wards"),
        ({"vitals": {"fast_stale_s": 400}}, "shorter than vitals.fast_lost_s"),
        ({"mqtt": {"embedded": True, "protocol": "5"}}, "embedded broker needs"),
        ({"alerts": {"tier2": {"chain": ["nobody"]}}}, "nobody"),
        ({"alerts": {"tier2_escalate_after_s": -60}}, "must not be negative"),
        (
            {"ingest": {"local_timezone": "CET+1"}},
            "ingest.local_timezone: 'CET+1' is not an IANA time zone",
        ),
        ({"ingest": {"ward_timezones": ["icu"]}}, "ingest.ward_timezones: 'icu' is not"),
        ({"ingest": {"ward_timezones": ["a b=UTC"]}}, "'a b' is not a ward name"),
        ({"mllp": {"port": 65536}}, "mllp.port: 65536 is not a port number"),
        ({"mllp": {"locations": ["7W/B3=icu"]}}, "mllp.locations: 'icu' is not ward/bed"),
    ],
)
def test_mistakes_are_refused_with_a_clear_message(data, message):
    with pytest.raises(config.ConfigError) as e:
        config.from_dict(data)
    assert message in str(e.value)


def test_site_and_ward_time_zones_and_mllp_locations():
    cfg = config.from_dict(
        {
            "ingest": {
                "local_timezone": "Europe/Berlin",
                "ward_timezones": ["annex=Europe/London"],
            },
            "mllp": {"locations": ["7 WEST/BED 3=icu/3"]},
        }
    )
    site, wards = cfg.timezones()
    assert str(site) == "Europe/Berlin" and {w: str(z) for w, z in wards.items()} == {
        "annex": "Europe/London"
    }
    assert cfg.mllp_locations() == {"7 WEST/BED 3": ("icu", "3")}
    assert config.from_dict({}).timezones() == (None, {})  # empty: no guess


def test_every_mistake_is_reported_at_once():
    with pytest.raises(config.ConfigError) as e:
        config.from_dict({"mqtt": {"a": 1, "b": 2}, "http": {"port": "x"}})
    assert len(str(e.value).splitlines()) == 3


def _main(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_command_line_and_bad_config_exit_2_with_one_line(tmp_path):
    r = _main("frobnicate")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nport = 'x'\n")
    r = _main("export", "--patient", "P1", "--config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"crswatch: config: {bad}: mqtt.port: expected int, got str"
    ]
    r = _main("run", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_a_config_with_only_specs_alert_keys_is_accepted():
    """SPEC.md (revised): any positive escalation delay is valid, shorter than the repeat
    interval included (escalating before the first reminder is a normal rota)."""
    cfg = config.from_dict({"alerts": {"tier3_escalate_after_s": 120}})
    assert cfg.alerting.routes[3].escalate_after_s == 120
