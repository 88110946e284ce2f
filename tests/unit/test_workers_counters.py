"""Workers' counters reach the parent's as differences: nothing counted twice, nothing lost."""

from __future__ import annotations

import marshal

import pytest

from node_dns.answer import xfr
from node_dns.answer.stats import Histogram, QueryStats
from node_dns.transports.ratelimit import RateLimitStats
from node_dns.transports.state import TransportState
from node_dns.transports.workers import counters, wire
from node_dns.transports.workers.counters import DropCounter

BOUNDS = (0.001, 0.01)


def worker() -> counters.Sources:
    return counters.Sources(
        queries=QueryStats(BOUNDS, BOUNDS),
        state=TransportState(),
        rate_limits=RateLimitStats(),
        transfers=xfr.Stats(),
        lag=Histogram(BOUNDS),
    )


def parent() -> counters.Targets:
    return counters.Targets(
        QueryStats(BOUNDS, BOUNDS), TransportState(), transfers=xfr.Stats(), lag=Histogram(BOUNDS)
    )


def carried(delta: dict[counters.Key, float]) -> dict[counters.Key, float]:
    """Through the pipe and back, as the parent reads it."""
    (message,), _ = wire.split(wire.frame((wire.STATS, delta, 0.0)))
    return message[1]  # type: ignore[no-any-return]


def report(
    source: counters.Sources, before: dict[counters.Key, float], into: counters.Targets
) -> dict[counters.Key, float]:
    now = counters.tally(source)
    counters.merge(carried(counters.since(now, before)), into)
    return now


def test_responses_of_two_workers_add_up_in_the_parent() -> None:
    one, two, total = worker(), worker(), parent()
    one.queries.count(("udp", "A", "NOERROR"))
    one.queries.count(("udp", "A", "NOERROR"))
    two.queries.count(("udp", "A", "NOERROR"))
    two.queries.count(("udp", "AAAA", "NXDOMAIN"))

    report(one, {}, total)
    report(two, {}, total)

    assert total.queries.responses == {("udp", "A", "NOERROR"): 3, ("udp", "AAAA", "NXDOMAIN"): 1}


def test_a_second_report_carries_only_what_moved_since_the_first() -> None:
    source, total = worker(), parent()
    source.queries.count(("udp", "A", "NOERROR"))
    before = report(source, {}, total)
    source.queries.count(("udp", "A", "NOERROR"))
    now = counters.tally(source)

    assert counters.since(now, before) == {("response", "udp", "A", "NOERROR"): 1}
    assert counters.since(now, now) == {}
    counters.merge(counters.since(now, before), total)
    assert total.queries.responses == {("udp", "A", "NOERROR"): 2}


def test_the_parents_own_counts_are_kept_beside_the_workers() -> None:
    source, total = worker(), parent()
    total.queries.count(("tcp", "A", "NOERROR"))  # TCP stays in the parent
    source.queries.count(("udp", "A", "NOERROR"))
    report(source, {}, total)
    assert total.queries.responses == {("tcp", "A", "NOERROR"): 1, ("udp", "A", "NOERROR"): 1}


def test_histograms_drops_truncation_and_errors_are_carried() -> None:
    source, total = worker(), parent()
    source.queries.durations["udp"].observe(0.0005)
    source.queries.durations["udp"].observe(0.5)
    source.queries.drop("not_a_query")
    source.queries.truncated["udp"] += 2
    source.state.internal_errors += 1
    source.lag.observe(0.002)  # type: ignore[union-attr]

    report(source, {}, total)

    assert total.queries.durations["udp"].counts == [1, 0, 1]
    assert total.queries.durations["udp"].total == pytest.approx(0.5005)
    assert total.queries.dropped == {"not_a_query": 1}
    assert total.queries.truncated["udp"] == 2
    assert total.state.internal_errors == 1
    assert total.lag.counts == [0, 1, 0]
    assert total.lag.total == pytest.approx(0.002)


def test_receive_waits_of_two_workers_add_up_in_the_parent() -> None:
    one, two, total = worker(), worker(), parent()
    one.queries.receive_waits.observe(0.0002)
    two.queries.receive_waits.observe(0.02)
    two.queries.receive_waits.observe(0.003)

    report(one, {}, total)
    report(two, {}, total)

    assert total.queries.receive_waits.counts == [1, 1, 1]
    assert total.queries.receive_waits.total == pytest.approx(0.0232)


def test_rate_limiting_and_the_transfer_gate_are_carried() -> None:
    source, total = worker(), parent()
    source.rate_limits.count("responses", "dropped")  # type: ignore[union-attr]
    source.transfers.count("ixfr_udp", "truncated")  # type: ignore[union-attr]
    source.transfers.tsig_errors["BADSIG"] = 1  # type: ignore[union-attr]
    source.transfers.signed_queries = 3  # type: ignore[union-attr]

    report(source, {}, total)

    assert total.rate_limits == {("responses", "dropped"): 1}
    assert total.transfers is not None
    assert total.transfers.transfers == {("ixfr_udp", "truncated"): 1}
    assert total.transfers.tsig_errors == {"BADSIG": 1}
    assert total.transfers.signed_queries == 3


def test_series_the_parent_does_not_know_are_skipped() -> None:
    total = parent()
    counters.merge(
        {("duration", "udp", "99"): 4, ("duration", "quic", "0"): 1, ("future_kind", "x"): 2}, total
    )
    assert total.queries.durations["udp"].counts == [0, 0, 0]


def test_the_response_count_of_a_difference() -> None:
    delta = {
        ("response", "udp", "A", "NOERROR"): 5,
        ("response", "udp", "A", "NXDOMAIN"): 2,
        ("dropped", "x"): 9,
    }
    assert counters.responses(delta) == 7


def test_kernel_drops_never_go_down_when_a_worker_socket_goes() -> None:
    drops = DropCounter()
    assert drops.update({11: 3, 12: 5}, live={11, 12}) == 8
    assert drops.update({12: 6}, live={12, 13}) == 9  # 11's worker died with 3 drops: they stay
    assert drops.update({12: 6, 13: 1}, live={12, 13}) == 10


def test_the_worker_configuration_survives_the_pipe() -> None:
    config = wire.WorkerConfig(
        index=1,
        edns_udp_size=1400,
        max_answers=4,
        rrl={"responses_per_second": 5, "exempt": ["10.0.0.0/8"]},
        tsig_keys=(("k1", "hmac-sha256", b"\x00secret"),),
        transfer_allow="10.0.0.0/8",
        transfers=True,
        max_transfers=3,
        log_level="debug",
        log_json=True,
        stats_interval=0.5,
        duration_bounds=BOUNDS,
        lag_bounds=(0.5,),
        receive_wait_bounds=(0.25,),
    )
    back = wire.WorkerConfig.from_wire(marshal.loads(marshal.dumps(config.to_wire())))
    assert back == wire.WorkerConfig(
        **{**config.__dict__, "rrl": {"responses_per_second": 5, "exempt": ("10.0.0.0/8",)}}
    )


def test_frames_split_where_they_end_and_keep_the_rest() -> None:
    data = wire.frame((wire.APPLIED, 3, 7, True)) + wire.frame((wire.RESYNC, "why"))
    messages, rest = wire.split(data[:-2])
    assert messages == [(wire.APPLIED, 3, 7, True)]
    messages, rest = wire.split(rest + data[-2:])
    assert messages == [(wire.RESYNC, "why")] and rest == b""


@pytest.mark.parametrize(
    "payload", [b"\xff\xff", marshal.dumps([1, 2]), marshal.dumps(()), marshal.dumps((1,))]
)
def test_a_frame_that_is_not_a_tagged_tuple_is_refused(payload: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.unframe(payload)


def test_a_frame_longer_than_any_zone_is_refused() -> None:
    with pytest.raises(wire.WireError):
        wire.split(wire.HEADER.pack(wire.MAX_FRAME + 1) + b"x")
