"""Issue 15, 9.: drugs come from a closed vocabulary (thresholds.py). Before: any string
counted as a vasopressor (300 invented names gave CRS grade 4 and a 30 KB alert message)
and a "tocilizumab" with a Cyrillic "о" displayed as the real drug but was not recognised."""

from __future__ import annotations

import time

import orjson
import pytest

from monitor.clinical.score import snapshot_from_json
from monitor.clinical.thresholds import (
    MEDICATIONS,
    VASOPRESSORS,
    canonical_drug,
    drug_key,
    lookalike_of,
)
from monitor.ingest.decode_json import decode_care
from monitor.ingest.messages import Rejected
from tests.conftest import wait_for
from tests.support.dashboard import admit
from tests.support.db import query

NOW = 1_790_000_000.0
CYRILLIC_O = "\u043e"


def care(**fields) -> dict:
    return decode_care(orjson.dumps({"ts": NOW - 10, **fields}), NOW).data


@pytest.mark.parametrize(
    "given, expected",
    [
        ("Norepinephrine", "norepinephrine"),
        ("  NORADRENALINE ", "norepinephrine"),
        ("ｎｏｒｅｐｉｎｅｐｈｒｉｎｅ", "norepinephrine"),  # full-width: NFKC
        ("angiotensin   II", "angiotensin ii"),
        ("Levophed", "norepinephrine"),
    ],
)
def test_known_vasopressors_are_named_one_way(given, expected):
    assert care(type="vasopressor", drug=given, action="start") == {
        "drug": expected,
        "action": "start",
    }


def test_an_unknown_name_is_free_text_that_no_grade_reads():
    assert care(type="vasopressor", drug="Unobtainium", action="start") == {
        "drug_text": "Unobtainium",
        "action": "start",
    }
    # a drug of the other list is not a vasopressor either
    assert care(type="vasopressor", drug="tocilizumab", action="start")["drug_text"]
    assert care(type="medication", drug="Actemra") == {"drug": "tocilizumab"}
    assert care(type="medication", drug="grandma's tea") == {"drug_text": "grandma's tea"}


def test_a_lookalike_is_refused_with_a_reason():
    fake = f"t{CYRILLIC_O}cilizumab"
    assert fake != "tocilizumab" and drug_key(fake) != "tocilizumab"
    assert lookalike_of(fake) == "tocilizumab" and canonical_drug(fake, MEDICATIONS) is None
    with pytest.raises(Rejected, match="another alphabet"):
        care(type="medication", drug=fake)
    with pytest.raises(Rejected, match="another alphabet"):
        care(type="vasopressor", drug="\u0435pinephrine", action="start")  # Cyrillic е
    # a name in another alphabet that imitates nothing is free text
    assert care(type="medication", drug="\u0430\u0441\u043f\u0438\u0440\u0438\u043d") == {
        "drug_text": "аспирин"
    }


def test_names_are_length_limited():
    with pytest.raises(Rejected, match="longer than 64"):
        care(type="medication", drug="x" * 65)


def test_the_vocabulary_holds_the_masking_drugs_and_the_score_cli_uses_it():
    assert "tocilizumab" in MEDICATIONS and "vasopressin" in VASOPRESSORS
    assert snapshot_from_json({"vasopressors": ["Noradrenaline"]}).vasopressors == (
        "norepinephrine",
    )
    with pytest.raises(ValueError, match="not a vasopressor"):
        snapshot_from_json({"vasopressors": ["made-up-pressor"]})


async def test_three_hundred_invented_vasopressors_change_no_grade(make_daemon, publisher, listen):
    d = await make_daemon()
    p, now = d.cfg.prefix, time.time()
    await admit(publisher, p, "w1", "b1", "P1", now)
    vitals = {"hr": 90, "rr": 16, "spo2": 97, "sbp": 118, "dbp": 70, "map": 86, "acvpu": "A"}
    await publisher(f"{p}/w1/b1/vitals", {"ts": now - 60, **vitals, "temp_c": 38.6})
    async with listen(f"{p}/rejected") as rejected:
        for i in range(300):
            await publisher(
                f"{p}/w1/b1/care",
                {"ts": now - 30, "type": "vasopressor", "drug": f"pressor-{i}", "action": "start"},
            )
        await publisher(
            f"{p}/w1/b1/care",
            {"ts": now - 20, "type": "medication", "drug": f"t{CYRILLIC_O}cilizumab"},
        )
        await wait_for(lambda: rejected.messages, what="the look-alike rejected")
    assert "another alphabet" in orjson.loads(rejected.messages[0][1])["reason"]
    db = d.cfg["storage.path"]
    await wait_for(
        lambda: query(db, "SELECT COUNT(*) FROM care_events")[0][0] == 300, what="stored"
    )

    def state():
        return next((s for s in d.ward.states() if s.get("patient_id") == "P1"), None)

    await wait_for(lambda: (s := state()) and s.get("crs_grade") is not None, what="graded")
    assert state()["crs_grade"] == 1  # fever alone: no vasopressor was recognised
    [(data,)] = query(db, "SELECT data FROM care_events LIMIT 1")
    assert "drug" not in orjson.loads(data) and "drug_text" in orjson.loads(data)
