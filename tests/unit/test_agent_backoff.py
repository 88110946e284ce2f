"""The agent's retry schedule: doubling from 0.5 s up to 60 s, jittered, reset on success."""

from __future__ import annotations

import random

from node_dns.agent.publish import Backoff, fatal_from


def test_delays_double_within_full_jitter_up_to_the_cap() -> None:
    backoff = Backoff(first=0.5, cap=60.0, rng=random.Random(3))

    delays = [backoff.next_delay() for _ in range(12)]

    ceilings = [min(60.0, 0.5 * 2**n) for n in range(12)]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    assert max(delays) <= 60.0


def test_a_success_starts_the_schedule_over() -> None:
    backoff = Backoff(first=0.5, cap=60.0, rng=random.Random(3))
    for _ in range(8):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() <= 0.5


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = {"message": f"refused with {status}"}


def test_missing_node_and_refusals_are_fatal_other_errors_are_retried() -> None:
    assert "does not exist" in str(fatal_from(Refused(404), "n1", "get"))
    assert (
        str(fatal_from(Refused(403), "n1", "patch")) == "no permission to patch node 'n1': refused with 403"
    )
    assert fatal_from(Refused(401), "n1", "get") is not None
    assert fatal_from(Refused(500), "n1", "patch") is None
    assert fatal_from(Refused(429), "n1", "patch") is None
    assert fatal_from(ConnectionError("reset"), "n1", "get") is None
