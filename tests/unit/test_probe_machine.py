"""Rise/fall and the self-fault guard on an injected clock: results in, verdict flips out."""

from __future__ import annotations

from node_dns.sources.probes.machine import Machine, Result

RISE, FALL = 2, 3


def ok(at: float) -> Result:
    return Result(True, "connected", 0.001, at)


def bad(at: float) -> Result:
    return Result(False, "connection refused", 0.001, at)


def machine_with(*keys: str, share: float = 0.5) -> Machine[str]:
    m: Machine[str] = Machine(share)
    for key in keys:
        m.add(key)
    return m


def feed(m: Machine[str], key: str, results: list[Result]) -> list[tuple[str, bool]]:
    flips = []
    for result in results:
        flips += [(f.key, f.verdict) for f in m.record(key, result, RISE, FALL)]
    return flips


def test_first_result_sets_the_verdict_at_once() -> None:
    m = machine_with("a")
    assert m.verdict("a") is None
    assert feed(m, "a", [ok(0)]) == [("a", True)]


def test_first_failure_keeps_a_new_target_out_at_once() -> None:
    m = machine_with("a")
    assert feed(m, "a", [bad(0)]) == [("a", False)]


def test_leaves_after_fall_failures_in_a_row() -> None:
    m = machine_with("a", "b", "c")
    for key in "bc":
        feed(m, key, [ok(0)])
    assert feed(m, "a", [ok(0), bad(1), bad(2)]) == [("a", True)]
    assert feed(m, "a", [bad(3)]) == [("a", False)]


def test_returns_after_rise_successes_in_a_row() -> None:
    m = machine_with("a", "b", "c")
    for key in "bc":
        feed(m, key, [ok(0)])
    feed(m, "a", [bad(0)])
    assert feed(m, "a", [ok(1)]) == []
    assert feed(m, "a", [ok(2)]) == [("a", True)]


def test_flapping_faster_than_rise_and_fall_changes_nothing() -> None:
    m = machine_with("a", "b", "c")
    for key in "bc":
        feed(m, key, [ok(0)])
    feed(m, "a", [ok(0)])
    flaps = [bad(t) if t % 2 else ok(t) for t in range(1, 100)]
    assert feed(m, "a", flaps) == []
    assert m.verdict("a") is True


def test_guard_holds_flips_to_down_when_more_than_half_fail() -> None:
    m = machine_with(*"abcd")
    for key in "abcd":
        feed(m, key, [ok(0)])
    flips = []
    for t in (1, 2, 3):
        for key in "abc":
            flips += feed(m, key, [bad(t)])
    assert m.fault
    assert flips == []
    assert all(m.verdict(k) for k in "abcd")
    assert m.faults == 1


def test_guard_exactly_half_is_not_a_fault() -> None:
    m = machine_with(*"abcd")
    for key in "abcd":
        feed(m, key, [ok(0)])
    flips = []
    for t in (1, 2, 3):
        for key in "ab":
            flips += feed(m, key, [bad(t)])
    assert not m.fault
    assert sorted(flips) == [("a", False), ("b", False)]


def test_after_recovery_each_held_target_is_decided_by_its_next_result() -> None:
    m = machine_with(*"abcd")
    for key in "abcd":
        feed(m, key, [ok(0)])
    for t in (1, 2, 3):
        for key in "abc":
            feed(m, key, [bad(t)])
    assert m.fault
    # b comes back: 2 of 4 fail, the fault is over. c's and a's last results are from before.
    assert feed(m, "b", [ok(4)]) == []
    assert not m.fault
    # Each held target is decided by its own next result.
    assert feed(m, "c", [ok(4)]) == []
    assert feed(m, "a", [bad(4)]) == [("a", False)]
    assert m.verdict("b") and m.verdict("c")


def test_a_custom_share_trips_earlier() -> None:
    m = machine_with(*"abcd", share=0.2)
    for key in "abcd":
        feed(m, key, [ok(0)])
    for t in (1, 2, 3):
        feed(m, "a", [bad(t)])
    assert m.fault
    assert m.verdict("a") is True


def test_targets_that_do_not_count_never_trip_the_guard() -> None:
    m = machine_with(*"abcd")
    for key in "abcd":
        m.record(key, ok(0), RISE, FALL, counts=key == "d")
    flips = []
    for t in (1, 2, 3):
        for key in "abc":
            flips += [(f.key, f.verdict) for f in m.record(key, bad(t), RISE, FALL, counts=False)]
    assert not m.fault
    assert sorted(flips) == [("a", False), ("b", False), ("c", False)]


def test_seeded_verdicts_are_kept_until_probes_say_otherwise() -> None:
    m = machine_with("a", "b", "c")
    m.seed([("a", False), ("b", True)])
    assert m.verdict("a") is False
    assert feed(m, "a", [ok(1)]) == []  # rise applies, not a first verdict
    assert feed(m, "a", [ok(2)]) == [("a", True)]


def test_removed_target_is_forgotten_by_the_guard() -> None:
    m = machine_with("a", "b")
    feed(m, "a", [bad(0)])
    feed(m, "b", [ok(0)])
    m.remove("a")
    assert m.counts() == (0, 1)


def test_in_the_first_round_a_served_unprobed_target_leaves_only_after_fall_failures() -> None:
    m = machine_with("a", "b", "c", "d")
    for key in "bcd":
        feed(m, key, [ok(0)])
    flips = []
    for t in (1, 2):
        flips += [(f.key, f.verdict) for f in m.record("a", bad(t), RISE, FALL, patient=True)]
    assert flips == []
    assert m.verdict("a") is None
    assert [(f.key, f.verdict) for f in m.record("a", bad(3), RISE, FALL, patient=True)] == [("a", False)]


def test_a_self_fault_in_the_first_round_keeps_unprobed_targets_served() -> None:
    m = machine_with(*"abcd")
    flips = []
    for t in range(1, 6):
        for key in "abcd":
            flips += [(f.key, f.verdict) for f in m.record(key, bad(t), RISE, FALL, patient=True)]
    assert m.fault
    assert flips == []
    assert all(m.verdict(k) is None for k in "abcd")
