"""HTTP settings: the server of /healthz, /readyz, /metrics and the debug endpoints."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group
from node_dns.settings.values import IpText


class HttpSettings(Group):
    """The HTTP server: health probes, Prometheus metrics, optional debug endpoints."""

    title = "HTTP server"

    http_address: IpText = Field("0.0.0.0", description="Address of the /healthz, /readyz, /metrics server.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server (0 picks one).")
    debug_endpoints: bool = Field(
        False, description="Serve /debug/zone on the HTTP server: the zone file being served right now."
    )
