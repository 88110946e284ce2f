"""The leader election rules of client-go, as pure functions: no I/O, no clocks, no randomness.

Given what this replica last saw in the Lease, the local monotonic time and its identity,
:func:`decide` says what to do next, and :func:`next_record` says what to write. The I/O loop in
:mod:`node_dns.leader.elector` feeds them.

The one rule that makes the scheme safe without synchronised clocks: a Lease is judged expired
by the *local* monotonic time at which this replica saw its record last change, plus the
record's ``leaseDurationSeconds`` -- never by the ``renewTime`` written by another machine.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The timing rules are written once, with the settings; the loop checks its Config by them too.
from node_dns.settings.leader import JITTER_FACTOR as JITTER_FACTOR  # noqa: PLC0414 (re-export)
from node_dns.settings.leader import check_timings as check_timings  # noqa: PLC0414 (re-export)

MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def micro_time(wall: float) -> str:
    """A Kubernetes MicroTime: UTC with microseconds, ``2006-01-02T15:04:05.000000Z``."""
    return datetime.fromtimestamp(wall, UTC).strftime(MICRO_TIME_FORMAT)


def parse_micro_time(value: str | None) -> float | None:
    """Unix time of a MicroTime (or an RFC 3339 time without fraction); None when unset."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True, slots=True)
class Record:
    """The leader election fields of a Lease's spec (client-go's LeaderElectionRecord).

    Times are kept as the strings the apiserver returned, so comparing two records compares
    exactly what was stored.
    """

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> Record:
        spec = spec or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The Lease spec to write: ``previous`` (other fields kept) with these fields set."""
        spec = dict(previous or {})
        spec.update(
            holderIdentity=self.holder or None,
            leaseDurationSeconds=self.lease_duration_seconds,
            acquireTime=self.acquire_time,
            renewTime=self.renew_time,
            leaseTransitions=self.transitions,
        )
        return {key: value for key, value in spec.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Observed:
    """A record and the local monotonic time at which this replica first saw it in that form."""

    record: Record
    since: float

    def expires(self) -> float:
        return self.since + self.record.lease_duration_seconds

    def expired(self, now: float) -> bool:
        """client-go's ``!isLeaseValid``: valid while since + duration is after now."""
        return not self.expires() > now


def observe(previous: Observed | None, record: Record, now: float) -> Observed:
    """Keep the old observation time while the record is unchanged; restart it on any change."""
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


class Action(enum.Enum):
    CREATE = "create"
    """No Lease exists: create one naming us."""
    ACQUIRE = "acquire"
    """Free or expired: take it over (new acquireTime, leaseTransitions + 1)."""
    RENEW = "renew"
    """It names us: write a new renewTime, keeping acquireTime and leaseTransitions."""
    WAIT = "wait"
    """Another holder's lease is still valid."""


def decide(observed: Observed | None, now: float, identity: str) -> Action:
    """What to do after a GET; ``observed`` is None when the GET answered 404."""
    if observed is None:
        return Action.CREATE
    record = observed.record
    if record.holder == identity:
        return Action.RENEW
    if record.holder and not observed.expired(now):
        return Action.WAIT
    return Action.ACQUIRE


def next_record(
    action: Action, current: Record | None, identity: str, lease_duration: float, wall: float
) -> Record:
    """The record to write for ``action`` at wall-clock time ``wall``."""
    stamp = micro_time(wall)
    duration = lease_duration_seconds(lease_duration)
    if action is Action.CREATE or current is None:
        return Record(identity, duration, stamp, stamp, 0)
    if action is Action.RENEW:
        return Record(identity, duration, current.acquire_time or stamp, stamp, current.transitions)
    if action is Action.ACQUIRE:
        return Record(identity, duration, stamp, stamp, current.transitions + 1)
    raise ValueError(f"nothing to write for {action}")


def released(current: Record, wall: float) -> Record:
    """What a leader writes when it lets go: no holder, a 1 s lease, the transitions kept."""
    stamp = micro_time(wall)
    return Record("", 1, stamp, stamp, current.transitions)


def lease_duration_seconds(lease_duration: float) -> int:
    """leaseDurationSeconds is an integer; round up so nobody sees a shorter lease than ours."""
    return max(1, math.ceil(lease_duration))


def retry_delay(retry_period: float, rand: float) -> float:
    """client-go's ``wait.Jitter``: retry_period x (1 + rand x 1.2), rand in [0, 1)."""
    return retry_period * (1.0 + rand * JITTER_FACTOR)


def acquire_delay(observed: Observed | None, now: float, retry_period: float, rand: float) -> float:
    """How long a non-leader waits before its next attempt.

    The jittered retry period, but no later than just after the observed lease expires: a
    replica that already knows when the holder's lease runs out need not sleep past it.
    """
    delay = retry_delay(retry_period, rand)
    if observed is not None and observed.record.holder:
        until_expiry = observed.expires() - now + 0.01
        if 0 < until_expiry < delay:
            return until_expiry
    return delay
