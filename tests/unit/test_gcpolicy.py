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


def test_the_first_generation_stays_small_so_one_pause_frees_little() -> None:
    assert gcpolicy.THRESHOLDS[0] <= 2_000


def test_freeze_moves_the_live_heap_out_of_later_collections() -> None:
    survivors = [[i] for i in range(10_000)]
    gcpolicy.freeze()
    assert gc.get_freeze_count() >= len(survivors)
    collected = {id(o) for o in gc.get_objects()}  # every generation but the permanent one
    assert not any(id(s) in collected for s in survivors)


def test_a_collection_is_timed_from_start_to_stop_in_its_generation() -> None:
    now = [100.0]
    pauses = gcpolicy.Pauses((0.001, 0.01, 0.1), clock=lambda: now[0])
    pauses("start", {"generation": 2})
    now[0] += 0.004
    pauses("stop", {"generation": 2, "collected": 0, "uncollectable": 0})

    assert pauses.histograms[2].counts == [0, 1, 0, 0]
    assert pauses.histograms[2].total == pytest.approx(0.004)
    assert sum(pauses.histograms[0].counts) == 0


def test_installed_it_sees_real_collections_and_removed_it_does_not() -> None:
    pauses = gcpolicy.Pauses((0.001, 0.01, 0.1))
    pauses.install()
    try:
        gc.collect()
    finally:
        pauses.remove()
    gc.collect()

    assert sum(pauses.histograms[2].counts) == 1
    assert pauses not in gc.callbacks
