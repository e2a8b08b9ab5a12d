"""`[alerts]` validated whole: a default that works, inheritance, one message per mistake."""

from __future__ import annotations

import tomllib

import pytest

from alerts.config import DEFAULT, AlertConfigError, parse_alerting
from alerts.routing import channels, deliveries

EXAMPLE = """
[alerts]
tier2_escalate_after_s = 600
tier3_escalate_after_s = 300
repeat_interval_s = 300
resolve_hold_s = 300
advisory_hold_s = 0
max_snooze_s = 1800
risk_threshold = 0.5
timezone = "Europe/Paris"

[alerts.receivers.physician_on_call]
channels = ["dashboard", "mqtt", "webhook"]
webhook = { url = "https://pager.example.org/crswatch", secret = "s3cret" }

[alerts.receivers.ward_phone]
channels = ["mqtt"]

[alerts.tier2]
chain = [["bedside_nurse", "physician_on_call"], "charge_nurse", "attending"]

[alerts.tier3]
chain = [["physician_on_call", "rapid_response", "ward_phone"], "attending"]
repeat_interval_s = 120
"""


def errors_of(data: dict) -> list[str]:
    with pytest.raises(AlertConfigError) as e:
        parse_alerting(data)
    assert str(e.value) == "\n".join(e.value.errors)
    return e.value.errors


def test_the_default_works_out_of_the_box_with_dashboard_and_mqtt_only():
    assert parse_alerting({}) == DEFAULT == parse_alerting(None)
    r2, r3 = DEFAULT.routes[2], DEFAULT.routes[3]
    assert r2.chain == (("bedside_nurse", "physician_on_call"), ("charge_nurse",), ("attending",))
    assert r3.chain == (("physician_on_call", "rapid_response"), ("attending",))
    assert (r2.escalate_after_s, r2.repeat_interval_s) == (600, 300)
    assert (r3.escalate_after_s, r3.repeat_interval_s) == (300, 300)
    assert 1 not in DEFAULT.routes  # tier 1: the dashboard only
    assert all(
        r.channels == ("dashboard", "mqtt") and r.webhook is None
        for r in DEFAULT.receivers.values()
    )
    assert (
        DEFAULT.resolve_hold_s,
        DEFAULT.advisory_hold_s,
        DEFAULT.max_snooze_s,
        DEFAULT.risk_threshold,
    ) == (300, 0, 1800, 0.5)


def test_the_example_toml_parses_with_inheritance_and_overrides():
    s = parse_alerting(tomllib.loads(EXAMPLE)["alerts"])
    assert s.routes[3].repeat_interval_s == 120  # overridden for tier 3
    assert s.routes[2].repeat_interval_s == 300  # inherited
    hook = s.receivers["physician_on_call"].webhook
    assert hook.url == "https://pager.example.org/crswatch" and "s3cret" not in repr(hook)
    assert channels(s, ("physician_on_call", "ward_phone")) == ("dashboard", "mqtt", "webhook")
    assert deliveries(s, ("ward_phone",)) == [("ward_phone", "mqtt", None)]
    assert s.clock(1_790_000_000) == "16:13"  # Europe/Paris, summer time


def test_escalation_timing_is_inherited_spec_key_then_top_level_then_builtin():
    s = parse_alerting({"escalate_after_s": 900, "tier3_escalate_after_s": 400})
    assert (s.routes[2].escalate_after_s, s.routes[3].escalate_after_s) == (900, 400)
    s = parse_alerting({"tier2": {"escalate_after_s": 700}})
    assert (s.routes[2].escalate_after_s, s.routes[3].escalate_after_s) == (700, 300)


def test_every_mistake_is_reported_once_and_together():
    errors = errors_of(
        {
            "tier2_escalate_after_s": -5,
            "resolve_hold_s": "300",
            "risk_threshold": 1.5,
            "colour": "red",
            "timezone": "Mars/Olympus",
            "receivers": {
                "pager": {"channels": ["webhook"]},
                "sms": {"channels": ["sms"]},
                "nurse": {"channels": ["mqtt"], "webhook": {"url": "ftp://x", "secret": ""}},
            },
            "tier1": {"chain": ["nurse"]},
            "tier2": {
                "chain": [["bedside_nurse"], "chrge_nurse", "bedside_nurse"],
                "escalate_after_s": 100,
                "repeat_interval_s": 200,
                "wait_s": 1,
            },
            "tier3": {"chain": []},
        }
    )
    assert errors == [
        "alerts.colour: unknown key (known: tier2_escalate_after_s, tier3_escalate_after_s, "
        "escalate_after_s, repeat_interval_s, resolve_hold_s, advisory_hold_s, max_snooze_s, "
        "risk_threshold, timezone, receivers, tier2, tier3)",
        "alerts.tier1: tier 1 (advisory) goes to the ward dashboard only; it has no chain, "
        "escalation or repeats",
        "alerts.tier2_escalate_after_s: must not be negative (got -5)",
        "alerts.resolve_hold_s: expected a number of seconds, got str",
        "alerts.timezone: unknown time zone 'Mars/Olympus'",
        "alerts.risk_threshold: a probability, 0 < p <= 1 (got 1.5)",
        "alerts.receivers.pager: channel webhook needs a webhook table with url and secret",
        "alerts.receivers.sms.channels: unknown channel 'sms' (known: dashboard, mqtt, webhook)",
        "alerts.receivers.nurse.webhook: given, but 'webhook' is not in channels",
        "alerts.receivers.nurse.webhook.url: expected an http:// or https:// URL",
        "alerts.receivers.nurse.webhook.secret: expected a non-empty signing secret",
        "alerts.tier2.wait_s: unknown key (known: chain, escalate_after_s, repeat_interval_s)",
        "alerts.tier2.chain: unknown receiver 'chrge_nurse' (defined: attending, "
        "bedside_nurse, charge_nurse, nurse, pager, physician_on_call, rapid_response, sms)",
        "alerts.tier2.chain: receiver 'bedside_nurse' appears in more than one stage",
        "alerts.tier2.escalate_after_s and alerts.tier2_escalate_after_s are both set: keep one",
        "alerts.tier3.chain: empty: an alert of this tier must reach someone",
    ]


def test_any_positive_escalation_delay_is_valid_even_before_the_first_repeat():
    """SPEC.md: a config that sets only SPEC's keys is accepted; escalating before the
    first reminder is a normal rota."""
    s = parse_alerting({"tier3_escalate_after_s": 120})
    assert (s.routes[3].escalate_after_s, s.routes[3].repeat_interval_s) == (120, 300)
    assert parse_alerting({"repeat_interval_s": 450}).routes[3].escalate_after_s == 300
    s = parse_alerting({"tier2": {"escalate_after_s": 100, "repeat_interval_s": 200}})
    assert (s.routes[2].escalate_after_s, s.routes[2].repeat_interval_s) == (100, 200)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_snooze_s": 0}, "alerts.max_snooze_s: must be more than 0"),
        (
            {"repeat_interval_s": True},
            "alerts.repeat_interval_s: expected a number of seconds, got bool",
        ),
        ({"receivers": []}, "alerts.receivers: expected a table of receivers"),
        (
            {"receivers": {"x": {"channels": []}}},
            "alerts.receivers.x.channels: expected a non-empty list of channel names (dashboard, "
            "mqtt, webhook)",
        ),
        (
            {"tier2": {"chain": "bedside_nurse"}},
            "alerts.tier2.chain: expected a list of stages (a name or a list of names)",
        ),
        (
            {"tier3": {"chain": [[]]}},
            "alerts.tier3.chain[0]: a stage is a receiver name or a non-empty list",
        ),
        (
            {"receivers": {"bad name!": {"channels": ["mqtt"]}}},
            "alerts.receivers.bad name!: a receiver name is 1-64 of A-Z a-z 0-9 _ . -",
        ),
    ],
)
def test_single_mistakes(data, message):
    assert errors_of(data) == [message]


def test_a_typo_in_a_chain_is_named():
    errors = errors_of({"tier3": {"chain": ["physician_on_call", "rapid_respons"]}})
    assert len(errors) == 1 and "unknown receiver 'rapid_respons'" in errors[0]
