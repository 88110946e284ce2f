"""The worker pool ``--workers`` asks for, built from the settings and the parent's own counters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from node_dns.answer import xfr
from node_dns.answer.stats import Histogram, QueryStats
from node_dns.settings import Settings
from node_dns.transports.state import TransportState
from node_dns.transports.workers import counters, wire
from node_dns.transports.workers.pool import Pool
from node_dns.zone.snapshot import Snapshot

STATS_INTERVAL = 1.0
"""Seconds between two counter reports of a worker: how far /metrics may lag behind it."""


def from_settings(
    settings: Settings,
    current: Callable[[], Snapshot],
    queries: QueryStats,
    state: TransportState,
    gate: xfr.Transfers | None,
    *,
    rrl: Mapping[str, Any] | None = None,
    duration_bounds: tuple[float, ...] = (),
    lag_bounds: tuple[float, ...] = (),
    receive_wait_bounds: tuple[float, ...] = (),
) -> Pool:
    """The pool ``--workers`` asks for. Workers' counts go into ``queries``, ``state`` and the
    gate's stats (the parent's own); the gate's TSIG keys, already loaded, go to the workers."""
    keys = gate.options.keys.values() if gate is not None else ()
    tsig = tuple((key.name, key.algorithm, key.secret) for key in keys)
    targets = counters.Targets(
        queries, state, transfers=gate.stats if gate is not None else None, lag=Histogram(lag_bounds)
    )

    def config(index: int) -> wire.WorkerConfig:
        return wire.WorkerConfig(
            index=index,
            edns_udp_size=settings.edns_udp_size,
            max_answers=settings.max_answers,
            rrl=dict(rrl) if rrl is not None else None,
            tsig_keys=tsig,
            transfer_allow=settings.transfer_allow,
            transfers=gate is not None,
            max_transfers=settings.max_transfers,
            log_level=settings.log_level,
            log_json=settings.log_json,
            stats_interval=STATS_INTERVAL,
            duration_bounds=duration_bounds,
            lag_bounds=lag_bounds,
            receive_wait_bounds=receive_wait_bounds,
        )

    return Pool(
        settings.workers,
        settings.dns_address,
        settings.dns_port,
        config,
        current,
        targets,
        receive_buffer=settings.udp_receive_buffer,
    )
