"""What the zone needs to know from the configuration, and nothing else.

The zone never reads the whole settings: :func:`zone_config` and :func:`policy` pick out the
names, TTLs, SOA timers, static records and health rules, so the builder can be run (and
tested) from a handful of values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from node_dns import model
from node_dns.zone.policy import Policy

if TYPE_CHECKING:
    from node_dns.settings import Settings


@dataclass(frozen=True, slots=True)
class NameServer:
    """An NS target; ``ips`` is its glue, served when the name is inside the zone."""

    name: str
    ips: tuple[model.IPAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    zone: str
    nameservers: tuple[NameServer, ...]
    soa_rname: str
    """The SOA mailbox in DNS form (dots in the local part escaped)."""
    record_ttl: int = 30
    ns_ttl: int = 3600
    soa_ttl: int = 300
    soa_refresh: int = 3600
    soa_retry: int = 600
    soa_expire: int = 86400
    negative_ttl: int = 30
    static_records: Mapping[str, tuple[model.IPAddress, ...]] = field(default_factory=dict)
    """Extra addresses per area, always served; never counted by the fail-open rule."""
    services: bool = False
    """Serve opted-in Services at <service>.<namespace>.<zone>."""


_SAME_NAMES = (
    "zone",
    "soa_rname",
    "record_ttl",
    "ns_ttl",
    "soa_ttl",
    "soa_refresh",
    "soa_retry",
    "soa_expire",
    "negative_ttl",
    "services",
)
"""Fields of :class:`ZoneConfig` taken as they are from the setting of the same name."""


def zone_config(settings: Settings) -> ZoneConfig:
    return ZoneConfig(
        nameservers=tuple(NameServer(ns.name, tuple(ns.ips)) for ns in settings.nameservers),
        static_records=dict(settings.static_records),
        **{name: getattr(settings, name) for name in _SAME_NAMES},
    )


def policy(settings: Settings) -> Policy:
    """Health and fail-open rules from the settings; ``fail_open=False`` keeps every name strict."""
    return Policy(
        cordoned_healthy=settings.cordoned_healthy,
        fail_open_min_healthy=settings.fail_open_min_healthy if settings.fail_open else 0,
        fail_open_min_fraction=settings.fail_open_min_fraction if settings.fail_open else 0.0,
    )
