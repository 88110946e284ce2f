"""DNS listener settings: where UDP and TCP listen, their limits, and the size of answers."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group
from node_dns.settings.values import IpText


class DnsSettings(Group):
    """The UDP and TCP listeners: address, port, EDNS size, TCP limits, answer size."""

    title = "DNS listeners"

    dns_address: IpText = Field("0.0.0.0", description="Address the UDP and TCP listeners bind to.")
    dns_port: int = Field(5353, ge=0, le=65535, description="Port for UDP and TCP (0 picks one).")
    edns_udp_size: int = Field(
        1232, ge=512, le=4096, description="UDP payload size advertised in EDNS replies, bytes."
    )
    udp_receive_buffer: int = Field(
        4 * 1024 * 1024,
        ge=0,
        le=1024 * 1024 * 1024,
        description=(
            "Receive buffer of the UDP socket, bytes (0: the kernel's default): queries that arrive "
            "while the server is busy wait there instead of being dropped. Above net.core.rmem_max it "
            "needs CAP_NET_ADMIN; without it the kernel's cap applies and a warning says so."
        ),
    )
    workers: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "Processes answering UDP, each with its own SO_REUSEPORT socket on the DNS port and a "
            "copy of the zone this process publishes (0: none, this process answers UDP itself). "
            "TCP, zone transfers, the watch and HTTP stay in this process."
        ),
    )
    tcp_idle_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds a TCP connection may sit idle before it is closed."
    )
    tcp_max_connections: int = Field(
        1024, ge=1, le=1_000_000, description="Concurrent TCP connections; more are refused."
    )
    tcp_max_queries: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description=(
            "Queries answered on one TCP connection before it closes (0: no cap, as NSD and Knot; "
            "queries already received are still answered)."
        ),
    )
    max_answers: int = Field(
        0,
        ge=0,
        le=4096,
        description=(
            "At most this many A/AAAA records per UDP answer, rotating round-robin across queries "
            "(0: off). TCP answers carry the full set."
        ),
    )
