"""Zone settings: the zone's name, its apex (NS, SOA), TTLs and static records."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from node_dns import model
from node_dns.settings.group import Group, chart
from node_dns.settings.values import DnsLabel, DnsName, dns_name

_TTL = 2_147_483_647
_MAILBOX_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,63}$")


class NameServer(model.Frozen):
    """An NS target; in-zone names need glue so resolvers can reach them."""

    name: DnsName
    ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()


def parse_nameservers(value: Any) -> Any:
    """``ns1.example.net=192.0.2.1,2001:db8::1; ns2.example.org`` or a list of such entries / dicts."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[;\s]+", value) if part]
    if not isinstance(value, list):
        return value
    parsed: list[Any] = []
    for entry in value:
        if isinstance(entry, str):
            name, _, ips = entry.partition("=")
            parsed.append({"name": name, "ips": [ip for ip in ips.split(",") if ip]})
        else:
            parsed.append(entry)
    return parsed


def parse_static(value: Any) -> Any:
    """``area=1.2.3.4,2001:db8::1; other=5.6.7.8`` or a mapping of area to a list of IPs."""
    if isinstance(value, str):
        result: dict[str, list[str]] = {}
        for part in (p for p in re.split(r"[;\s]+", value) if p):
            area, sep, ips = part.partition("=")
            if not sep:
                raise ValueError(f"entry {part!r} must look like area=IP[,IP...]")
            result.setdefault(area, []).extend(ip for ip in ips.split(",") if ip)
        return result
    return value


def static_ips(value: Any) -> Any:
    """Parse each IP of the static records (IPv4-mapped IPv6 folds to IPv4, like node IPs)."""
    if not isinstance(value, dict):
        return value
    parsed: dict[str, list[model.IPAddress]] = {}
    for area, ips in value.items():
        addresses: list[model.IPAddress] = []
        for ip in [ips] if isinstance(ips, str) else ips:
            if not isinstance(ip, str):
                addresses.append(ip)
                continue
            try:
                address = model.parse_ip(ip)
            except ValueError:
                raise ValueError(f"{area}: {ip!r} is not an IPv4 or IPv6 address") from None
            if address.is_unspecified or address.is_multicast or getattr(address, "scope_id", None):
                raise ValueError(f"{area}: {ip} is an unspecified, multicast or zone-scoped address")
            addresses.append(address)
        key = area.strip().lower() if isinstance(area, str) else area  # Home= and home= are one area
        parsed.setdefault(key, []).extend(addresses)
    return parsed


class ZoneSettings(Group):
    """The zone served: its name, apex NS and SOA, the TTLs of its records, static records."""

    title = "Zone"

    zone: DnsName = Field(
        description="The zone served, e.g. lb.example.net. Required.", json_schema_extra=chart("zone")
    )
    nameservers: Annotated[list[NameServer], NoDecode, BeforeValidator(parse_nameservers)] = Field(
        description=(
            "NS records of the apex: 'name[=ip,ip]' entries separated by ';'. In-zone names must "
            "carry glue IPs. Required."
        ),
        json_schema_extra=chart("nameservers"),
    )
    soa_email: str = Field(
        description="Responsible mailbox for the SOA (hostmaster@example.net). Required.",
        json_schema_extra=chart("soa.email"),
    )
    record_ttl: int = Field(30, ge=0, le=_TTL, description="TTL of area A/AAAA, seconds.")
    ns_ttl: int = Field(3600, ge=0, le=_TTL, description="TTL of apex NS and glue, seconds.")
    soa_ttl: int = Field(
        300, ge=0, le=_TTL, description="TTL of the SOA record, seconds.", json_schema_extra=chart("soa.ttl")
    )
    soa_refresh: int = Field(
        3600, ge=1, le=_TTL, description="SOA REFRESH, seconds.", json_schema_extra=chart("soa.refresh")
    )
    soa_retry: int = Field(
        600, ge=1, le=_TTL, description="SOA RETRY, seconds.", json_schema_extra=chart("soa.retry")
    )
    soa_expire: int = Field(
        86400, ge=1, le=_TTL, description="SOA EXPIRE, seconds.", json_schema_extra=chart("soa.expire")
    )
    negative_ttl: int = Field(
        30,
        ge=0,
        le=86400,
        description="SOA MINIMUM: how long resolvers cache NXDOMAIN/NODATA, seconds (RFC 2308).",
    )
    static_records: Annotated[
        dict[DnsLabel, tuple[model.IPAddress, ...]],
        NoDecode,
        BeforeValidator(static_ips),
        BeforeValidator(parse_static),
    ] = Field(
        default_factory=dict,
        description=(
            "Extra IPs per area, always served (also when no node lists the area): "
            "'area=IP,IP; other=IP'. Fail-open thresholds count node IPs only."
        ),
    )

    @field_validator("soa_email")
    @classmethod
    def _email(cls, value: str) -> str:
        local, at, domain = value.strip().partition("@")
        if not at or not local or "@" in domain:
            raise ValueError("must be a mailbox like hostmaster@example.net")
        if not _MAILBOX_LOCAL.match(local):
            raise ValueError("local part has characters a DNS label cannot carry")
        dns_name(domain)
        return value.strip()

    @field_validator("static_records")
    @classmethod
    def _static_areas(
        cls, value: dict[str, tuple[model.IPAddress, ...]]
    ) -> dict[str, tuple[model.IPAddress, ...]]:
        for area in value:
            if area in model.FAMILY_PREFIXES:
                raise ValueError(f"area {area!r} is reserved for the family prefixes (v4., v6.)")
        return value

    @model_validator(mode="after")
    def _check_nameservers(self) -> Self:
        if not self.nameservers:
            raise ValueError("nameservers: at least one name server is required")
        for ns in self.nameservers:
            in_zone = ns.name == self.zone or ns.name.endswith("." + self.zone)
            if in_zone and not ns.ips:
                raise ValueError(f"nameservers: {ns.name} is inside the zone and needs glue IPs (name=IP)")
        return self

    @property
    def soa_rname(self) -> str:
        """The SOA mailbox in DNS form: dots in the local part are escaped (RFC 1035 §8)."""
        local, _, domain = self.soa_email.partition("@")
        return local.replace(".", "\\.") + "." + domain.rstrip(".").lower()
