"""client-go's leader election rules, as pure functions: table-driven, no I/O, no clocks."""

from __future__ import annotations

import re

import pytest

from node_dns.leader import decide
from node_dns.leader.decide import Action, Observed, Record

ME, OTHER = "me", "other"
HELD = Record(OTHER, 15, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:10.000000Z", 3)


@pytest.mark.parametrize(
    ("observed", "now", "expected"),
    [
        (None, 0.0, Action.CREATE),
        (Observed(HELD, since=100.0), 100.0, Action.WAIT),
        (Observed(HELD, since=100.0), 114.999, Action.WAIT),
        (Observed(HELD, since=100.0), 115.0, Action.ACQUIRE),  # valid while since + 15 > now
        (Observed(HELD, since=100.0), 500.0, Action.ACQUIRE),
        (Observed(Record("", 1, None, None, 3), since=100.0), 100.0, Action.ACQUIRE),  # released
        (Observed(Record(ME, 15, None, None, 3), since=100.0), 100.0, Action.RENEW),
        (Observed(Record(ME, 15, None, None, 3), since=100.0), 900.0, Action.RENEW),
    ],
)
def test_decide(observed: Observed | None, now: float, expected: Action) -> None:
    assert decide.decide(observed, now, ME) is expected


def test_expiry_is_judged_by_when_the_record_was_seen_to_change_not_by_its_renew_time() -> None:
    # The stored renewTime says "long ago" (or the writer's clock is off): it does not matter.
    ancient = Record(OTHER, 15, "2000-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.000000Z", 0)
    first = decide.observe(None, ancient, now=1000.0)
    assert decide.decide(first, 1000.0, ME) is Action.WAIT
    # Seen again unchanged: the observation time stays, so it expires 15 s after first seen.
    again = decide.observe(first, ancient, now=1010.0)
    assert again.since == 1000.0
    assert decide.decide(again, 1014.9, ME) is Action.WAIT
    assert decide.decide(again, 1015.0, ME) is Action.ACQUIRE


def test_any_change_of_the_record_restarts_the_observation() -> None:
    first = decide.observe(None, HELD, now=100.0)
    renewed = Record(OTHER, 15, HELD.acquire_time, "2026-01-01T00:00:12.000000Z", 3)
    second = decide.observe(first, renewed, now=112.0)
    assert second.since == 112.0
    assert decide.decide(second, 126.0, ME) is Action.WAIT
    assert decide.decide(second, 127.0, ME) is Action.ACQUIRE


def test_the_records_own_lease_duration_decides_expiry() -> None:
    released = Record("x", 1, None, None, 0)  # a holder that wrote a 1 s lease
    seen = decide.observe(None, released, now=10.0)
    assert decide.decide(seen, 10.5, ME) is Action.WAIT
    assert decide.decide(seen, 11.0, ME) is Action.ACQUIRE


def test_create_starts_at_zero_transitions() -> None:
    record = decide.next_record(Action.CREATE, None, ME, 15, wall=0.0)
    assert record == Record(ME, 15, "1970-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z", 0)


def test_takeover_sets_acquire_time_and_counts_a_transition() -> None:
    record = decide.next_record(Action.ACQUIRE, HELD, ME, 15, wall=1_800_000_000.25)
    assert record.holder == ME
    assert record.acquire_time == record.renew_time == "2027-01-15T08:00:00.250000Z"
    assert record.transitions == HELD.transitions + 1


def test_renewal_keeps_acquire_time_and_transitions() -> None:
    mine = Record(ME, 15, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:10.000000Z", 7)
    record = decide.next_record(Action.RENEW, mine, ME, 15, wall=1_800_000_000.0)
    assert record.acquire_time == mine.acquire_time
    assert record.renew_time == "2027-01-15T08:00:00.000000Z"
    assert record.transitions == 7


def test_release_empties_the_holder_with_a_one_second_lease_and_keeps_transitions() -> None:
    record = decide.released(Record(ME, 15, "a", "b", 4), wall=0.0)
    assert record == Record("", 1, "1970-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z", 4)
    spec = record.to_spec()
    assert "holderIdentity" not in spec
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 4


def test_micro_time_is_utc_with_microseconds() -> None:
    stamp = decide.micro_time(1_700_000_000.123456)
    assert stamp == "2023-11-14T22:13:20.123456Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", decide.micro_time(0.5))
    assert decide.parse_micro_time(stamp) == pytest.approx(1_700_000_000.123456)
    assert decide.parse_micro_time("2023-11-14T22:13:20Z") == 1_700_000_000.0
    assert decide.parse_micro_time(None) is None


def test_spec_round_trip_keeps_other_fields() -> None:
    spec = {"holderIdentity": "x", "leaseDurationSeconds": 4, "strategy": "OldestEmulationVersion"}
    record = Record.from_spec(spec)
    assert record == Record("x", 4, None, None, 0)
    written = Record(ME, 4, "t", "t", 1).to_spec(spec)
    assert written["strategy"] == "OldestEmulationVersion"
    assert Record.from_spec(written) == Record(ME, 4, "t", "t", 1)
    assert Record.from_spec(None) == Record()


def test_lease_duration_seconds_rounds_up() -> None:
    assert decide.lease_duration_seconds(15) == 15
    assert decide.lease_duration_seconds(4.2) == 5
    assert decide.lease_duration_seconds(0.3) == 1


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 2.0), (0.5, 3.2), (0.999999, 4.4)])
def test_retry_jitter_is_client_gos(rand: float, expected: float) -> None:
    assert decide.retry_delay(2.0, rand) == pytest.approx(expected, abs=1e-4)


def test_a_waiting_replica_wakes_when_the_observed_lease_expires() -> None:
    seen = Observed(HELD, since=100.0)  # expires at 115
    assert decide.acquire_delay(seen, 114.0, 2.0, rand=0.5) == pytest.approx(1.01)
    assert decide.acquire_delay(seen, 100.0, 2.0, rand=0.5) == pytest.approx(3.2)
    assert decide.acquire_delay(seen, 120.0, 2.0, rand=0.0) == pytest.approx(2.0)  # already expired
    assert decide.acquire_delay(None, 0.0, 2.0, rand=0.0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("timings", "problem"),
    [
        ((15, 10, 2), None),
        ((4, 3, 0.5), None),
        ((10, 10, 2), "leader_renew_deadline"),
        ((15, 2.4, 2), "leader_retry_period"),
        ((15, 10, 0), "leader_retry_period"),
    ],
)
def test_timings_are_checked_like_client_go(timings: tuple[float, float, float], problem: str | None) -> None:
    result = decide.check_timings(*timings)
    assert (result.split(":")[0] if result else None) == problem
