"""Fuzzing inside the suite: a short run (hypothesis, 2,000 inputs per decoder) of the
three vitals decoders (JSON, FHIR, HL7) and the care and admit decoders, of the two small
ones, and of the whole router; every input is accepted (and then what came out is checked)
or rejected with `Rejected` and a reason, never another exception.

The inputs are arbitrary bytes, JSON of the wrong shapes, and structure-aware mutations of
real-shaped messages: the generators of the long run (`benchmarks/fuzz.py`, not in CI),
driven here by hypothesis' randomness so a failure shrinks and replays. The last tests
check that long run itself: it covers every target, and it catches, saves and reports a
crash.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from monitor.ingest.route import INBOUND
from tests.support import fuzz_engine as fuzz
from tests.support.brokers import ROOT


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


RNG = st.randoms(use_true_random=False)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(fuzz.INTERESTING_NUMBERS)
    | st.sampled_from(fuzz.INTERESTING_STRINGS)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(fuzz.FIELD_NAMES) | st.text(max_size=8), inner, max_size=6
        )
    ),
    max_leaves=12,
)


def payloads(kind: str) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes (1 in 5), JSON of any shape (1 in 5), structure-aware mutations of
    real-shaped messages (3 in 5)."""
    shaped = RNG.map(lambda rng: fuzz.generate(rng, kind))
    return st.one_of(
        st.binary(max_size=300),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),  # NaN and huge integers too
        shaped,
        shaped,
        shaped,
    )


@pytest.mark.parametrize("kind", ["vitals", "fhir", "hl7", "care", "admit"])
@fuzz_settings(2000)
@given(data=st.data())
def test_decoder_accepts_or_rejects_never_crashes(kind, data):
    payload = data.draw(payloads(kind))
    note(f"payload: {payload!r}")
    fuzz.DECODERS[kind](payload)  # raises on anything but Rejected, or a bad result


@pytest.mark.parametrize("kind", ["discharge", "device"])
@fuzz_settings(500)
@given(data=st.data())
def test_small_decoders_accept_or_reject(kind, data):
    payload = data.draw(payloads(kind))
    note(f"payload: {payload!r}")
    fuzz.DECODERS[kind](payload)


@fuzz_settings(2000)
@given(rng=RNG, n=st.integers(1, 6))
def test_router_returns_an_item_for_any_message(rng, n):
    """Sequences of messages (an admit, then vitals for that bed...) on topics of every
    shape: each routed to an accepted Item or a rejection with a reason, never an
    exception and never "internal error" (a decoder raising something else)."""
    router = fuzz.new_router()
    for _ in range(n):
        topic, payload = fuzz.generate_route(rng)
        note(f"{topic!r}: {payload[:500]!r}")
        fuzz.check_route(router, topic, payload)


@fuzz_settings(500)
@given(topic=st.text(max_size=60), payload=st.binary(max_size=200))
def test_router_on_arbitrary_topics(topic, payload):
    fuzz.check_route(fuzz.new_router(), topic, payload)


@fuzz_settings(500)
@given(
    ward=st.text(max_size=34),
    bed=st.text(max_size=34),
    kind=st.sampled_from(INBOUND),
    payload=st.binary(max_size=200),
)
def test_router_on_arbitrary_ward_and_bed_names(ward, bed, kind, payload):
    fuzz.check_route(fuzz.new_router(), f"{fuzz.PREFIX}/{ward}/{bed}/{kind}", payload)


def test_the_seeds_are_accepted_so_mutations_start_from_valid_messages():
    """A bed's life through the router, with the seeds the mutations start from: if a seed
    were rejected (its time out of the window, its shape out of date), every mutation of
    it would only test the first check that refuses it."""
    router = fuzz.new_router()
    bed = "crs/w5/b7"
    kinds = [fuzz.check_route(router, f"{bed}/admit", fuzz.SEEDS["admit"][0]).kind]
    for kind in ("vitals", "fhir", "hl7", "care", "device"):
        for seed in fuzz.SEEDS[kind]:
            kinds.append(fuzz.check_route(router, f"{bed}/{kind}", seed).kind)
    kinds.append(fuzz.check_route(router, f"{bed}/discharge", fuzz.SEEDS["discharge"][1]).kind)
    assert kinds == [
        "admit",
        "vitals",
        "vitals",
        "vitals",
        "care",
        "care",
        "care",
        "care",
        "device",
        "device",
        "discharge",
    ]
    for kind, run in fuzz.DECODERS.items():
        assert all(run(seed) for seed in fuzz.SEEDS[kind] if seed), kind


def test_long_run_covers_every_target(tmp_path, capsys):
    code = fuzz.main(["--seconds", "1", "--engine", "random", "--crash-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "no crash" in out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.split() and line.split()[0] in (*fuzz.DECODERS, "route")
    }
    assert set(rows) == {*fuzz.DECODERS, "route"}
    for name, (tried, accepted, rejected, crashes, _) in rows.items():
        assert int(tried) > 0 and int(accepted) > 0 and int(rejected) > 0, name
        assert int(tried) == int(accepted) + int(rejected) and crashes == "0", name
    assert list(tmp_path.iterdir()) == []


def test_long_run_saves_a_crash_and_fails(tmp_path, capsys):
    """A decoder with a planted bug (KeyError on inputs of a length divisible by 7): the
    run finds it, saves the input, counts every crash, reports each place once, exits 1."""
    target = fuzz.decoder_target("vitals")
    real = target.run
    target.run = lambda data: real(data) if len(data) % 7 else {}["planted"]
    runner = fuzz.Runner([target], tmp_path / "crashes")
    fuzz.run_random(runner, seconds=30, seed=1, max_inputs=400)
    assert runner.report("random", 1.0) == 1
    assert target.stats.crashes > 1 and len(runner.crashes) == 1
    [saved] = (tmp_path / "crashes").iterdir()
    name, payload = fuzz.load_crash(saved)
    assert name == "vitals" and len(payload) % 7 == 0
    with pytest.raises(KeyError):
        target.run(payload)
    assert "KeyError" in capsys.readouterr().out
    # replayed against the real decoder (the bug fixed): no crash any more
    assert fuzz.main(["--replay", str(saved)]) == 0


def test_long_run_with_atheris(tmp_path):
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fuzz.py"),
            "--seconds",
            "3",
            "--engine",
            "atheris",
            "--crash-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "libFuzzer" in proc.stdout and "no crash" in proc.stdout
