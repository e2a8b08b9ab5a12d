"""monitor/ops/gcpolicy.py: the collector settings the daemon process runs with."""

from __future__ import annotations

import gc
import weakref

import pytest

from monitor.ops import gcpolicy


@pytest.fixture
def restore_gc():
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def test_pauses_are_observed_with_their_generation(restore_gc):
    seen = []
    gcpolicy.configure(lambda seconds, generation: seen.append((seconds, generation)))
    assert gc.get_threshold()[0] == gcpolicy.YOUNG
    gc.collect(1)
    assert seen and seen[-1][1] == 1 and seen[-1][0] >= 0


def test_survivors_of_a_full_collection_are_frozen_until_the_next_one(restore_gc):
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    gcpolicy.full_and_freeze()
    assert gc.get_freeze_count() > 1000  # the ward, the model, the interpreter's own
    del a, b  # a cycle frozen while in use, then dropped: young collections skip it
    gc.collect()
    assert alive() is not None
    gcpolicy.full_and_freeze()  # the hourly one unfreezes first, so it goes then
    assert alive() is None


def test_a_cycle_made_after_the_freeze_is_collected_as_usual(restore_gc):
    class Node:
        pass

    gcpolicy.full_and_freeze()
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    gc.collect()
    assert alive() is None
