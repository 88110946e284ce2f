"""One probe against real listeners: what passes, what fails, and the words it fails with."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from node_dns.settings import probe_spec as spec
from node_dns.sources.probes import checks
from tests.harness import probe_targets as targets

HOST = "127.0.0.31"
FAST = spec.Timing(interval=1.0, timeout=0.5)


def ip(text: str = HOST) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def probe(text: str, **options: object) -> spec.Probe:
    base = spec.Probe("tcp", 1, timing=FAST)
    return spec.parse(
        text, spec.Probe(**{"kind": "tcp", "port": 1, "timing": FAST, **options}) if options else base
    )  # type: ignore[arg-type]


async def test_tcp_passes_on_an_open_port_and_fails_refused_when_closed() -> None:
    listener = targets.TcpTarget(HOST)
    await listener.start()
    try:
        result = await checks.check(ip(), probe(f"tcp:{listener.port}"))
        assert (result.ok, result.detail) == (True, "connected")
    finally:
        await listener.stop()
    result = await checks.check(ip(), probe(f"tcp:{listener.port}"))
    assert (result.ok, result.detail) == (False, "connection refused")


async def test_http_passes_within_the_status_range_and_sends_path_and_host() -> None:
    server = targets.HttpTarget(HOST, status=204)
    await server.start()
    try:
        result = await checks.check(ip(), probe(f"http://:{server.port}/healthz?x=1"))
        assert (result.ok, result.detail) == (True, "HTTP 204")
        assert server.requests == [("/healthz?x=1", f"{HOST}:{server.port}")]
    finally:
        await server.stop()


async def test_http_500_is_down() -> None:
    server = targets.HttpTarget(HOST, status=500)
    await server.start()
    try:
        result = await checks.check(ip(), probe(f"http://:{server.port}/"))
        assert (result.ok, result.detail) == (False, "HTTP 500")
    finally:
        await server.stop()


async def test_http_status_range_is_configurable() -> None:
    server = targets.HttpTarget(HOST, status=302)
    await server.start()
    try:
        strict = probe(f"http://:{server.port}/", status=(200, 299))
        assert not (await checks.check(ip(), strict)).ok
    finally:
        await server.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> targets.Certificates:
    return targets.make_certificates(tmp_path_factory.mktemp("tls"), HOST, "node.probe.test")


@pytest.fixture
async def https(certificates: targets.Certificates) -> AsyncIterator[targets.HttpTarget]:
    server = targets.HttpTarget(HOST, status=200, tls=certificates.server_context())
    await server.start()
    yield server
    await server.stop()


async def test_https_verifies_against_the_given_ca_and_the_ip(
    https: targets.HttpTarget, certificates: targets.Certificates
) -> None:
    result = await checks.check(ip(), probe(f"https://:{https.port}/", ca_file=str(certificates.ca)))
    assert (result.ok, result.detail) == (True, "HTTP 200")


async def test_https_with_an_untrusted_certificate_is_down(https: targets.HttpTarget) -> None:
    result = await checks.check(ip(), probe(f"https://:{https.port}/"))
    assert not result.ok
    assert result.detail.startswith("TLS:")


async def test_https_without_verification_accepts_any_certificate(https: targets.HttpTarget) -> None:
    assert (await checks.check(ip(), probe(f"https://:{https.port}/", verify=False))).ok


async def test_https_sends_sni_and_checks_the_name(
    https: targets.HttpTarget, certificates: targets.Certificates
) -> None:
    good = probe(f"https://:{https.port}/", ca_file=str(certificates.ca), sni="node.probe.test")
    assert (await checks.check(ip(), good)).ok
    assert https.requests[-1][1] == f"node.probe.test:{https.port}"
    wrong = probe(f"https://:{https.port}/", ca_file=str(certificates.ca), sni="other.probe.test")
    result = await checks.check(ip(), wrong)
    assert not result.ok
    assert "TLS" in result.detail


async def test_dns_passes_on_the_expected_rcode_only() -> None:
    server = targets.DnsTarget(HOST, rcode=5)
    await server.start()
    try:
        refused = await checks.check(ip(), probe(f"dns:{server.port}:probe.test"))
        assert (refused.ok, refused.detail) == (False, "rcode REFUSED")
        expected = await checks.check(ip(), probe(f"dns:{server.port}:probe.test", rcode=5))
        assert expected.ok
    finally:
        await server.stop()


@pytest.fixture
def nsd(tmp_path: Path) -> Iterator[targets.Nsd]:
    server = targets.Nsd(tmp_path, HOST)
    server.start()
    yield server
    server.stop()


async def test_dns_probe_against_nsd(nsd: targets.Nsd) -> None:
    inside = await checks.check(ip(), probe(f"dns:{nsd.port}:probe.probe.test"))
    assert (inside.ok, inside.detail) == (True, "rcode NOERROR")
    missing = await checks.check(ip(), probe(f"dns:{nsd.port}:missing.probe.test"))
    assert (missing.ok, missing.detail) == (False, "rcode NXDOMAIN")


async def test_dns_with_nothing_listening_is_down() -> None:
    server = targets.DnsTarget(HOST)  # port picked, never started
    result = await checks.check(ip(), probe(f"dns:{server.port}:probe.test"))
    assert not result.ok


def test_blackholed_address_is_down_by_timeout() -> None:
    import asyncio

    with targets.Namespace() as ns, ns.tcp_listeners(8080):
        reachable = asyncio.run(checks.check(ip(ns.ns_ip), probe("tcp:8080")))
        assert reachable.ok
        ns.blackhole()
        result = asyncio.run(checks.check(ip(ns.ns_ip), probe("tcp:8080")))
    assert (result.ok, result.detail) == (False, "timeout after 0.5s")
