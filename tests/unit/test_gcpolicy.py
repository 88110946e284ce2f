"""Garbage collection tuned for serving: thresholds set, the startup heap frozen once."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from node_dns import gcpolicy


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_sets_the_serving_thresholds() -> None:
    gcpolicy.tune()
    assert gc.get_threshold() == gcpolicy.THRESHOLDS


def test_a_larger_first_generation_than_cpythons_default() -> None:
    assert gcpolicy.THRESHOLDS[0] > 700


def test_freeze_moves_the_live_heap_out_of_later_collections() -> None:
    survivors = [[i] for i in range(10_000)]
    gcpolicy.freeze()
    assert gc.get_freeze_count() >= len(survivors)
    collected = {id(o) for o in gc.get_objects()}  # every generation but the permanent one
    assert not any(id(s) in collected for s in survivors)
