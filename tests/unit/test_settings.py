"""The settings model: normalisation, defaults, cross-field rules, and error lines naming settings."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pydantic import ValidationError

from node_dns import model
from node_dns.settings import Settings, describe_error, field_names

REQUIRED: dict[str, Any] = {
    "zone": "lb.example.net",
    "nameservers": "ns1.lb.example.net=192.0.2.53",
    "soa_email": "hostmaster@example.net",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("NODE_DNS_"):
            monkeypatch.delenv(key)


def make(**values: Any) -> Settings:
    return Settings(**{**REQUIRED, **values})


def error_line(**values: Any) -> str:
    with pytest.raises(ValidationError) as failed:
        make(**values)
    return describe_error(failed.value)


def test_zone_is_lower_cased_without_trailing_dot() -> None:
    assert make(zone="LB.Example.NET.").zone == "lb.example.net"


def test_nameservers_parse_names_and_glue() -> None:
    settings = make(nameservers="ns1.lb.example.net=192.0.2.53,2001:db8::53; ns2.example.org")

    assert [(ns.name, ns.ips) for ns in settings.nameservers] == [
        ("ns1.lb.example.net", (ipaddress.ip_address("192.0.2.53"), ipaddress.ip_address("2001:db8::53"))),
        ("ns2.example.org", ()),
    ]


def test_out_of_zone_nameserver_needs_no_glue() -> None:
    assert make(nameservers="ns.example.org").nameservers[0].ips == ()


def test_soa_rname_escapes_dots_of_the_local_part() -> None:
    assert make(soa_email="dns.admin@Example.NET").soa_rname == "dns\\.admin.example.net"


def test_core_defaults() -> None:
    settings = make()

    assert (settings.record_ttl, settings.soa_ttl, settings.negative_ttl, settings.ns_ttl) == (
        30,
        300,
        30,
        3600,
    )
    assert settings.edns_udp_size == 1232
    assert settings.areas_annotation == "node-dns/areas"
    assert settings.ips_annotation == "node-dns/ips"
    assert settings.cordoned_healthy is False


def test_error_names_flag_and_env_var() -> None:
    assert error_line(record_ttl=-1) == (
        "invalid setting --record-ttl (NODE_DNS_RECORD_TTL): Input should be greater than or equal to 0"
    )


def test_cross_field_nameserver_rule_names_the_nameservers_setting() -> None:
    line = error_line(nameservers="ns1.lb.example.net")

    assert line.startswith("invalid setting --nameservers (NODE_DNS_NAMESERVERS): ")
    assert "glue" in line


def test_empty_nameservers_names_the_nameservers_setting() -> None:
    assert "--nameservers (NODE_DNS_NAMESERVERS)" in error_line(nameservers="")


def test_missing_settings_are_reported_as_required_on_one_line() -> None:
    with pytest.raises(ValidationError) as failed:
        Settings()  # type: ignore[call-arg]

    line = describe_error(failed.value)
    assert "\n" not in line
    for name in ("zone", "nameservers", "soa_email"):
        assert f"--{name.replace('_', '-')} (NODE_DNS_{name.upper()}): is required" in line


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValidationError):
        make(zonee="typo.example")


def test_core_setting_names_are_stable() -> None:
    core = {
        "zone",
        "nameservers",
        "soa_email",
        "record_ttl",
        "ns_ttl",
        "soa_ttl",
        "soa_refresh",
        "soa_retry",
        "soa_expire",
        "negative_ttl",
        "areas_annotation",
        "ips_annotation",
        "cordoned_healthy",
        "resync_interval",
        "dns_address",
        "dns_port",
        "edns_udp_size",
        "tcp_idle_timeout",
        "tcp_max_connections",
        "tcp_max_queries",
        "http_address",
        "http_port",
        "kubeconfig",
        "log_level",
        "log_json",
    }

    assert core <= set(field_names())


@pytest.mark.parametrize("text", ["web", "a", "a-b", "x" * 63, "0lead"])
def test_dns_labels(text: str) -> None:
    assert model.is_dns_label(text)


@pytest.mark.parametrize("text", ["", "-a", "a-", "x" * 64, "A", "a.b", "a_b", "ns\n", "\u212aelvin"])
def test_not_dns_labels(text: str) -> None:
    assert not model.is_dns_label(text)


def test_a_namespace_with_a_trailing_newline_is_rejected() -> None:
    assert "--leader-lease-namespace" in error_line(leader_lease_namespace="node-dns\n")


def test_zone_config_defaults_are_the_settings_defaults() -> None:
    """ZoneConfig (what the zone builder takes) restates some defaults: they must be the model's."""
    import dataclasses

    from node_dns.settings import catalog
    from node_dns.zone.config import ZoneConfig

    defaults = {entry.name: catalog.default_value(entry.info) for entry in catalog.entries()}
    for item in dataclasses.fields(ZoneConfig):
        if item.name in defaults and item.default is not dataclasses.MISSING:
            assert item.default == defaults[item.name], item.name
