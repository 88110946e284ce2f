"""Response rate limiting in the real process: one flooding source is limited, its neighbour is not.

Loopback accepts any 127/8 source, so clients bind to 127.0.0.2 and 127.0.0.3; with
``--rrl-ipv4-prefix=32`` they are different clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.message
import dns.rcode
import pytest

from tests.harness import ControlPlane, NodeDns
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION
from tests.reliability.common import addresses, ask, exchange_many, metric, truncated, udp_socket

pytestmark = pytest.mark.controlplane

RATE = 20
FLOOD = 400


def test_flood_from_one_source_is_limited_while_another_is_answered(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    area = unique_name("rrl")
    control_plane.create_node(
        unique_name("node"), annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.91"}
    )
    name = f"{area}.{DEFAULT_ZONE}"
    args = [f"--rrl-responses-per-second={RATE}", "--rrl-slip=2", "--rrl-ipv4-prefix=32", "--rrl-window=5"]
    with NodeDns(control_plane.kubeconfig, extra_args=args) as server:
        flooder = udp_socket("127.0.0.2")
        query = dns.message.make_query(name, "A")
        packets = []
        for index in range(FLOOD):
            query.id = index
            packets.append(query.to_wire())
        started = time.monotonic()
        full, slipped = 0, 0
        for wire in exchange_many(flooder, packets, server.dns_address):
            reply = dns.message.from_wire(wire)
            if truncated(reply):
                assert reply.answer == [] and reply.question == query.question
                slipped += 1
            else:
                assert addresses(reply) == {"192.0.2.91"}
                full += 1
        elapsed = time.monotonic() - started
        flooder.close()

        # the neighbour, at a polite pace, during the flooder's penalty: every answer is whole
        for _ in range(10):
            reply = ask(server.dns_address, name, source="127.0.0.3", timeout=1.0)
            assert not truncated(reply)
            assert addresses(reply) == {"192.0.2.91"}
            time.sleep(0.02)
        # the flooder itself is still limited over UDP, but TCP (what a slipped reply leads to) works
        assert addresses(ask(server.dns_address, name, source="127.0.0.2", tcp=True)) == {"192.0.2.91"}

        _, text = server.http_get("/metrics")
        dropped = metric(
            text, "node_dns_dns_rate_limited_responses_total", 'action="dropped",category="responses"'
        )
        slips = metric(
            text, "node_dns_dns_rate_limited_responses_total", 'action="slipped",category="responses"'
        )
    print(
        f"\nflood of {FLOOD} from 127.0.0.2 at {RATE}/s: {full} answered, {slipped} slipped (TC=1), "
        f"{dropped} dropped"
    )
    assert full <= RATE + 1 + RATE * elapsed  # the one-second burst plus what the clock earned meanwhile
    assert slipped >= (FLOOD - full) // 2 - 5
    assert slips == slipped
    assert dropped is not None and dropped + slipped + full == FLOOD


def test_rate_limiting_is_off_by_default(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    with NodeDns(control_plane.kubeconfig) as server:
        sock = udp_socket("127.0.0.2")
        query = dns.message.make_query(f"nope.{DEFAULT_ZONE}", "A")
        packets = []
        for index in range(300):
            query.id = index
            packets.append(query.to_wire())
        replies = [dns.message.from_wire(wire) for wire in exchange_many(sock, packets, server.dns_address)]
        got = sum(r.rcode() == dns.rcode.NXDOMAIN and not truncated(r) for r in replies)
        sock.close()
        assert got == 300
        _, text = server.http_get("/metrics")
        assert "node_dns_dns_rate_limited_responses" not in text
