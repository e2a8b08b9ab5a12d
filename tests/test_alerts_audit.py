"""The audit chain: every decision and user action, keyed (HMAC) and anchored: an
intruder who can write the records but does not hold the key cannot rewrite them unseen."""

from __future__ import annotations

import copy
import json

from alerts.audit import GENESIS, Anchor, AuditEvent, chain, verify
from tests.support.alerts import LOW_FLOW, T0, Ward, view

KEY = b"k" * 32


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
        records.append(chain(prev, AuditEvent.of_decision(d), KEY))
        prev = records[-1]["hash"]
    return records


def anchor_of(records, key=KEY) -> Anchor:
    return Anchor.of(len(records), records[-1]["hash"] if records else GENESIS, "t", key)


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
    assert verify(records, KEY, [anchor_of(records)])[:2] == (True, [])
    assert verify([], KEY, [])[:2] == (True, [])


def test_a_modified_record_is_found():
    records = recorded()
    records[1]["actor"] = "nurse.bo"
    assert verify(records, KEY)[1] == [
        "record 1: its hash does not match its content under the key (modified)"
    ]
    records = recorded()
    records[2]["detail"]["notify"] = True
    ok, problems, _ = verify(records, KEY)
    assert not ok and problems[0].startswith("record 2:")


def test_a_deleted_or_reordered_record_is_found():
    records = recorded()
    del records[1]
    assert verify(records, KEY)[1] == [
        "record 1: does not follow record 0 (a record was deleted, inserted or reordered)"
    ]
    records = recorded()
    records[1], records[2] = records[2], records[1]
    assert verify(records, KEY)[1][0].startswith("record 1: does not follow")
    records = recorded()
    assert verify(records[1:], KEY)[1] == [
        "record 0: does not start the chain (a record was deleted, inserted or reordered)"
    ]


def test_a_fully_rehashed_forgery_without_the_key_is_found():
    """Issue 15, 5.: the unkeyed chain let anyone re-hash every record after a change."""
    records = recorded()
    forged, prev = [], GENESIS
    for r in records:
        event = AuditEvent(r["name"], r["ts"], r["actor"], r["alert_id"], r["detail"])
        if r["name"] == "alert.acknowledged":
            event = AuditEvent(r["name"], r["ts"], "nurse.bo", r["alert_id"], r["detail"])
        forged.append(chain(prev, event, b"a guessed key, not the one" * 2))
        prev = forged[-1]["hash"]
    ok, problems, _ = verify(forged, KEY)
    assert not ok and len(problems) == len(records)  # not one record verifies
    # with the key, the same forgery would pass: the key is what protects the chain
    assert verify(copy.deepcopy(records), KEY)[0]


def test_a_cut_tail_and_an_emptied_table_are_found_with_the_anchor():
    records = recorded()
    anchors = [anchor_of(records[:2]), anchor_of(records)]
    assert verify(records, KEY, anchors)[0]
    assert verify(records[:-1], KEY)[0]  # a shorter chain is a valid chain ...
    ok, problems, _ = verify(records[:-1], KEY, anchors)  # ... unless anchored
    assert not ok and problems == [
        "anchor 1 (t): the chain holds 3 records but 4 were anchored "
        "(records deleted from the end: truncated)"
    ]
    ok, problems, _ = verify([], KEY, anchors)
    assert not ok and all("the audit table is empty" in p for p in problems)
    assert len(problems) == 2


def test_a_forged_anchor_is_found():
    records = recorded()
    ok, problems, _ = verify(records[:2], KEY, [anchor_of(records[:2], key=b"x" * 32)])
    assert not ok and problems == ["anchor 0: malformed or not signed with the key (forged)"]
    assert Anchor.parse("{not json") is None
    ok, problems, _ = verify(records, KEY, [None, anchor_of(records)])
    assert problems == ["anchor 0: malformed or not signed with the key (forged)"]


def test_a_malformed_record_is_named_not_a_crash():
    records = recorded()
    stored = [{**r, "seq": i + 1, "detail": json.dumps(r["detail"])} for i, r in enumerate(records)]
    assert verify(stored, KEY)[0]  # detail as stored text verifies the same
    stored[2]["detail"] = '{"tier": 2, broken'
    stored[3]["hash"] = None
    del stored[1]["actor"]
    ok, problems, _ = verify(stored, KEY, [anchor_of(records)])
    assert not ok
    assert problems[0] == "record 1: not an audit record (fields missing)"
    assert problems[1] == "record 2: its detail is not valid JSON (malformed: modified)"
    assert problems[2].startswith("record 3: its hash does not match")


def test_records_are_plain_json():
    r = chain(GENESIS, AuditEvent.at("user.login", T0, "nurse.kim"), KEY)
    assert json.loads(json.dumps(r)) == r
    assert set(r) == {"name", "ts", "actor", "alert_id", "detail", "prev", "hash"}
    assert verify([{k: v for k, v in r.items() if k != "actor"}], KEY)[0] is False
