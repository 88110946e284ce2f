"""The bench's rule for a run that measured the client, and the ratio it headlines."""

from __future__ import annotations

import math

from bench import qps, validity
from bench.common import PerfResult

STAT = """cpu  300 0 100 500 20 0 0 0 0 0
cpu0 100 0 50 250 10 0 0 0 0 0
cpu1 200 0 50 250 10 0 0 0 0 0
intr 12345
"""


def result(**fields: float) -> PerfResult:
    return PerfResult(1000.0, 10_000, 10_000, 0, 0.1, {"NOERROR": 10_000}, **fields)  # type: ignore[arg-type]


def test_proc_stat_gives_busy_and_total_per_cpu_without_the_aggregate_line() -> None:
    cores = validity.parse_proc_stat(STAT)

    assert cores == {0: validity.CoreTimes(150, 410), 1: validity.CoreTimes(250, 510)}


def test_busy_share_is_the_busy_part_of_the_interval() -> None:
    share = validity.busy_share(validity.CoreTimes(100, 1000), validity.CoreTimes(190, 1100))

    assert share == 0.9


def test_busy_share_of_no_time_is_nan() -> None:
    assert math.isnan(validity.busy_share(validity.CoreTimes(5, 10), validity.CoreTimes(5, 10)))


def test_a_saturated_client_and_an_idle_server_core_is_client_bound() -> None:
    assert validity.client_bound(client_core_busy=0.99, server_core_busy=0.60)


def test_a_saturated_client_with_a_saturated_server_core_is_valid() -> None:
    assert not validity.client_bound(client_core_busy=0.99, server_core_busy=0.95)


def test_a_client_with_room_left_is_valid_even_when_the_server_idles() -> None:
    assert not validity.client_bound(client_core_busy=0.80, server_core_busy=0.50)


def test_the_thresholds_are_inclusive() -> None:
    assert validity.client_bound(0.95, 0.90)


def test_unmeasured_cores_never_invalidate_a_run() -> None:
    assert not validity.client_bound(math.nan, math.nan)


def test_an_invalid_run_says_why_in_one_line() -> None:
    why = result(client_core_busy=0.99, server_core_busy=0.7).invalid

    assert why == "INVALID (client-bound): client core 99% busy while the server core was 30% idle"


def test_a_valid_run_has_no_reason() -> None:
    assert result(client_core_busy=0.5, server_core_busy=0.99).invalid is None


def test_answers_per_cpu_second_divides_completed_queries_by_server_cpu() -> None:
    assert result(server_cpu_s=4.0).per_cpu_second == 2500.0


def test_answers_per_cpu_second_without_cpu_is_nan() -> None:
    assert math.isnan(result(server_cpu_s=0.0).per_cpu_second)
    assert math.isnan(result().per_cpu_second)


def test_pooled_weighs_runs_by_what_they_measured() -> None:
    assert validity.pooled([1000, 3000], [1.0, 1.0]) == 2000.0
    assert validity.pooled([1000, 9000], [1.0, 3.0]) == 2500.0


def test_the_headline_is_ours_over_the_reference_per_cpu_second() -> None:
    per_cpu = {"node-dns": 150_000.0, "NSD": 200_000.0, "Knot": 180_000.0}

    assert validity.headline(per_cpu, "node-dns", "NSD") == 0.75


def test_the_headline_without_the_reference_is_nan() -> None:
    assert math.isnan(validity.headline({"node-dns": 1.0}, "node-dns", "NSD"))
    assert math.isnan(validity.ratio(1.0, math.nan))
    assert math.isnan(validity.ratio(math.nan, 1.0))


def test_only_the_runs_a_ratio_is_made_of_can_invalidate_it() -> None:
    bound = result(client_core_busy=1.0, server_core_busy=0.5)
    fine = result(client_core_busy=0.5, server_core_busy=1.0)
    results = {"node-dns": [fine], "NSD": [fine], "Knot": [bound]}

    assert qps.invalid_runs(results, "node-dns", "NSD") == []
    assert qps.invalid_runs(results) == [f"Knot round 1: {bound.invalid}"]


def test_a_server_limited_by_neither_itself_nor_the_client_is_not_driven() -> None:
    assert validity.undriven(server_share=0.42, client_core_busy=0.54)


def test_a_server_near_a_full_core_is_driven() -> None:
    assert not validity.undriven(server_share=0.85, client_core_busy=0.54)


def test_a_saturated_client_is_the_other_rule_not_this_one() -> None:
    assert not validity.undriven(server_share=0.42, client_core_busy=0.99)


def test_a_run_not_driven_says_so_without_being_invalid() -> None:
    run = result(server_cpu_s=4.2, wall_s=10.0, client_core_busy=0.54, server_core_busy=0.85)

    assert run.invalid is None
    assert run.caveat == "not driven to its limit: server 42% of a core, client core 54% busy"


def test_a_ratio_with_every_run_valid_is_judged_by_its_value() -> None:
    assert validity.judged(0.95, 0.9, ours_bound=0, reference_bound=0) == ("0.95x", True)
    assert validity.judged(0.85, 0.9, ours_bound=0, reference_bound=0) == ("0.85x", False)


def test_a_client_bound_reference_invalidates_the_ratio_whatever_its_value() -> None:
    text, met = validity.judged(1.2, 0.9, ours_bound=0, reference_bound=2)

    assert not met
    assert text == "1.20x (INVALID: the reference was client-bound in 2 runs)"


def test_our_client_bound_runs_make_the_ratio_a_lower_bound_that_can_meet_the_target() -> None:
    text, met = validity.judged(1.04, 0.9, ours_bound=1, reference_bound=0)

    assert met
    assert text == "1.04x (a lower bound: node-dns was client-bound in 1 runs)"


def test_below_the_target_our_client_bound_runs_leave_it_inconclusive() -> None:
    text, met = validity.judged(0.8, 0.9, ours_bound=3, reference_bound=0)

    assert not met
    assert text == "0.80x (inconclusive: node-dns was client-bound in 3 runs)"


def test_an_unmeasured_ratio_never_meets_a_target() -> None:
    assert validity.judged(math.nan, 0.9, ours_bound=1, reference_bound=0)[1] is False
