"""The audit chain: every decision and user action, tamper-evident."""

from __future__ import annotations

import copy

from alerts.audit import GENESIS, AuditEvent, chain, verify
from tests.support.alerts import LOW_FLOW, T0, Ward, view


def recorded() -> list[dict]:
    """A real timeline's decisions, chained as the daemon would append them."""
    w = Ward()
    decisions = w.at(0, view(crs=2, reasons=LOW_FLOW))
    decisions += w.engine.ack("a1", "nurse.kim", T0 + 30)
    decisions += w.ticks(35, 400)
    decisions += w.at(400, view(crs=0))
    decisions += w.tick(700)
    records, prev = [], GENESIS
    for d in decisions:
        records.append(chain(prev, AuditEvent.of_decision(d)))
        prev = records[-1]["hash"]
    return records


def test_a_chain_of_decisions_verifies():
    records = recorded()
    assert [(r["name"], r["actor"]) for r in records] == [
        ("alert.raised", "system"),
        ("alert.acknowledged", "nurse.kim"),
        ("alert.suppressed", "system"),
        ("alert.resolved", "system"),
    ]
    assert records[0]["prev"] == GENESIS and records[0]["ts"] == "2026-09-21T14:13:20.000Z"
    assert records[1]["detail"]["reason"] == "acknowledged by nurse.kim: escalation stopped"
    assert verify(records) == (True, None, "4 records, chain intact")
    assert verify([]) == (True, None, "0 records, chain intact")


def test_a_modified_record_is_found():
    records = recorded()
    records[1]["actor"] = "nurse.bo"
    assert verify(records) == (False, 1, "record 1: hash does not match its content (modified)")
    records = recorded()
    records[2]["detail"]["notify"] = True
    assert verify(records)[:2] == (False, 2)


def test_a_deleted_or_reordered_record_is_found():
    records = recorded()
    del records[1]
    assert verify(records) == (
        False,
        1,
        "record 1: does not follow record 0 (a record was deleted, inserted or reordered)",
    )
    records = recorded()
    records[1], records[2] = records[2], records[1]
    assert verify(records)[:2] == (False, 1)
    records = recorded()
    assert verify(records[1:]) == (
        False,
        0,
        "record 0: does not start the chain (a record was deleted, inserted or reordered)",
    )


def test_a_rehashed_forgery_breaks_the_next_link_and_a_cut_tail_needs_the_head():
    records = recorded()
    forged = copy.deepcopy(records)
    forged[1] = chain(
        forged[1]["prev"], AuditEvent.at("alert.acknowledged", T0 + 30, "nurse.bo", "a1", {})
    )
    assert verify(forged)[:2] == (False, 2)
    head = records[-1]["hash"]
    assert verify(records, head=head)[0]
    assert verify(records[:-1])[0]  # a shorter chain is a valid chain ...
    assert verify(records[:-1], head=head)[:2] == (False, 3)  # ... unless the head is known


def test_records_are_plain_json():
    import json

    r = chain(GENESIS, AuditEvent.at("user.login", T0, "nurse.kim"))
    assert json.loads(json.dumps(r)) == r
    assert set(r) == {"name", "ts", "actor", "alert_id", "detail", "prev", "hash"}
    assert verify([{**r, "extra": 1}])[:2] == (False, 0)
