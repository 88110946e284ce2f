"""Fuzz the real process: mutated packets over UDP and TCP to ``python -m node_dns serve``.

The in-process slice (test_fuzz.py) checks every reply byte for byte; this one checks what only
the real process shows: it keeps answering, its log has no traceback (nor one line per bad
packet), and its metrics count no internal error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.fuzz import engine
from tests.harness import ControlPlane, NodeDns
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION

pytestmark = pytest.mark.controlplane


def test_real_process_survives_fuzzed_udp_and_tcp(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    area = unique_name("fuzz")
    node = unique_name("node")
    control_plane.create_node(node, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.77"})
    name = f"{area}.{DEFAULT_ZONE}"
    with NodeDns(control_plane.kubeconfig) as server:
        udp_feeder = engine.UdpFeeder(server.dns_address, name=name, expected={"192.0.2.77"})
        tcp_feeder = engine.TcpFeeder(server.dns_address, name=name, expected={"192.0.2.77"})
        udp_batch: list[bytes] = []
        tcp_batch: list[bytes] = []
        try:
            for index, data in enumerate(engine.inputs(seed=4242, count=6000)):
                udp_batch.append(data)
                if index % 3 == 0:
                    tcp_batch.append(data)
                if len(udp_batch) == 50:
                    udp_feeder.batch(udp_batch)
                    udp_batch.clear()
                if len(tcp_batch) == 50:
                    tcp_feeder.batch(tcp_batch)
                    tcp_batch.clear()
                if index % 500 == 0:
                    tcp_feeder.raw_stream(bytes([0xFF, 0xFF]) + data)  # a length prefix never met
        finally:
            udp_feeder.close()
        assert udp_feeder.sent >= 5950 and tcp_feeder.sent >= 1950
        assert server.running
        _, metrics = server.http_get("/metrics")
        errors = re.search(r"^node_dns_dns_internal_errors_total (\S+)$", metrics, re.M)
        assert errors is not None and float(errors.group(1)) == 0
        logs = server.logs()
    assert "Traceback" not in logs
    # startup lines only: nothing per packet (the process logs a handful of lines at start)
    assert len(logs.splitlines()) < 20, logs[-3000:]
