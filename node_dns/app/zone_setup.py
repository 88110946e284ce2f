"""The zone and how Node objects are read, from the settings.

Both the server (:func:`node_dns.app.server.start`) and ``node-dns zone`` (which builds the zone
once and prints it) need them, so they live apart from the server.
"""

from __future__ import annotations

from node_dns.settings import Settings
from node_dns.sources import nodes
from node_dns.zone import config as zone_config
from node_dns.zone import writer


def new_zone(settings: Settings) -> writer.Zone:
    """The zone with what it needs from the settings: names, TTLs, static records, policy."""
    return writer.Zone(zone_config.zone_config(settings), zone_config.policy(settings))


def node_keys(settings: Settings, labels: bool = False) -> nodes.Keys:
    return nodes.Keys(
        areas=settings.areas_annotation,
        ips=settings.ips_annotation,
        ip_sources=settings.ip_sources,
        labels=labels,
        discovered=settings.discovered_annotation,
    )
