"""Due times on an injected clock: spread over the interval, fixed cadence, no pile-up."""

from __future__ import annotations

import itertools

from node_dns.sources.probes.schedule import Schedule, phase


def test_phase_is_stable_and_inside_the_jittered_window() -> None:
    for key in range(200):
        value = phase(key, 2.0, 0.5)
        assert 0 <= value < 1.0
        assert value == phase(key, 2.0, 0.5)


def test_targets_spread_over_the_interval() -> None:
    phases = sorted(phase(("node", n), 1.0, 1.0) for n in range(1000))
    tenths = [sum(1 for p in phases if i / 10 <= p < (i + 1) / 10) for i in range(10)]
    assert min(tenths) > 60  # 100 expected per tenth; a burst would leave tenths empty


def test_each_target_fires_once_per_interval_at_a_fixed_cadence() -> None:
    s: Schedule[str] = Schedule()
    s.add("a", 0.0, 1.0, 1.0)
    fired = []
    now = 0.0
    while now < 10.0:
        fired += [due for _, due in s.pop_due(now)]
        now += 0.05
    assert len(fired) == 10
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(fired)}
    assert gaps == {1.0}


def test_a_late_loop_fires_once_not_once_per_missed_turn() -> None:
    s: Schedule[str] = Schedule()
    s.add("a", 0.0, 1.0, 0.0)
    assert len(s.pop_due(0.0)) == 1
    assert len(s.pop_due(5.5)) == 1
    assert s.next_due() == 6.0


def test_removed_targets_never_fire_and_re_added_ones_fire_once() -> None:
    s: Schedule[str] = Schedule()
    s.add("a", 0.0, 1.0, 0.0)
    s.remove("a")
    assert s.pop_due(3.0) == []
    s.add("a", 3.0, 1.0, 0.0)
    s.remove("a")
    s.add("a", 3.0, 1.0, 0.0)
    assert [k for k, _ in s.pop_due(3.0)] == ["a"]


def test_soon_targets_start_within_a_tenth_of_the_interval() -> None:
    s: Schedule[int] = Schedule()
    for n in range(100):
        s.add(n, 100.0, 2.0, 1.0, soon=True)
    assert len(s.pop_due(100.2)) == 100
