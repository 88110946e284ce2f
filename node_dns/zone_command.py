"""`node-dns zone`: one read-only LIST of nodes (and Services/EndpointSlices), printed as a zone file.

For troubleshooting: what would be served right now, built the way the server builds it, with
no watch, no listeners and no writes.
"""

from __future__ import annotations

from node_dns import app, kube
from node_dns.settings import Settings
from node_dns.sources import lister, nodes
from node_dns.sources import services as service_source
from node_dns.zone import dump


async def zone_file(settings: Settings) -> str:
    """The zone file of one complete list; any failure to list raises."""
    zone = app.new_zone(settings)
    source = nodes.NodeSource(zone, app.node_keys(settings))
    client = kube.Client(kube.CredentialsLoader(settings.kubeconfig))
    service_lister = None
    if settings.services:
        service_facts = service_source.ServiceSource(
            zone, settings.service_annotation, source.stats.invalid_entries
        )
        service_lister = service_source.ServiceLister(service_facts, client, settings.service_namespaces)
    try:
        once = lister.Lister(
            source,
            client,
            resync_interval=settings.resync_interval,
            service_lister=service_lister,
            node_selector=settings.node_selector,
        )
        await once.list_once()
    finally:
        await client.close()
    return dump.render(zone.snapshot)
