"""What a histogram gained between two /metrics scrapes (bench.stallstats): the soak's columns."""

from __future__ import annotations

import math

from bench import stallstats

FAMILY = "node_dns_dns_udp_receive_wait_seconds"


def scrape(counts: dict[str, int]) -> str:
    """A cumulative histogram as /metrics renders it."""
    return "\n".join(f'{FAMILY}_bucket{{le="{bound}"}} {count}.0' for bound, count in counts.items())


def test_the_longest_observation_and_those_over_the_budget_are_of_the_run_only() -> None:
    before = scrape({"0.0005": 10, "0.005": 12, "0.01": 13, "0.025": 13, "+Inf": 13})
    after = scrape({"0.0005": 50, "0.005": 60, "0.01": 63, "0.025": 63, "+Inf": 63})

    longest, over = stallstats.in_phase(before, after, FAMILY, 0.005)

    assert longest == 0.01  # the 5-10 ms bucket gained two; nothing above it moved
    assert over == 2


def test_a_run_without_observations_has_no_longest() -> None:
    same = scrape({"0.0005": 5, "0.005": 5, "+Inf": 5})

    assert stallstats.in_phase(same, same, FAMILY, 0.005) == (0.0, 0.0)


def test_a_server_without_the_family_gives_no_figures() -> None:
    longest, over = stallstats.in_phase("", "", FAMILY, 0.005)

    assert math.isnan(longest) and math.isnan(over)
