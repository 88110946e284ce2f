"""The one settings model: command-line flags, ``NODE_DNS_*`` environment variables and Helm values.

Every setting has one name. The flag is ``--name-with-dashes``, the environment variable is
``NODE_DNS_NAME_WITH_UNDERSCORES`` and the Helm value is documented beside it in the chart. The
model is flat on purpose: a flag, an env var and a chart value map one to one, which is what
operators grep for. Fields are grouped below by the part of the system they steer.

Validation happens before anything binds a socket or talks to the apiserver, and every failure
is reported as one line that names the setting and the rule (see :func:`describe_error`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from node_dns import model

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ANNOTATION_KEY = re.compile(
    r"^(?:(?=.{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _dns_name(value: str) -> str:
    """Lower-case, strip the trailing dot, and check label syntax (LDH, 1-63 chars, <= 253 total)."""
    name = value.strip().rstrip(".").lower()
    if not name:
        raise ValueError("must be a DNS name, got an empty value")
    if len(name) > 253:
        raise ValueError("must be at most 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise ValueError(f"label {label!r} is not a valid DNS label (a-z, 0-9, '-', 1-63 chars)")
    return name


def _annotation_key(value: str) -> str:
    key = value.strip()
    if not _ANNOTATION_KEY.match(key):
        raise ValueError(f"{value!r} is not a valid Kubernetes annotation key (prefix/name)")
    return key


def _split_list(value: Any) -> Any:
    """Accept a list, or a comma/whitespace separated string (flags and env vars)."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value) if part]
    return value


def _parse_nameservers(value: Any) -> Any:
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


def _parse_static(value: Any) -> Any:
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


DnsName = Annotated[str, AfterValidator(_dns_name)]
AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]


# --- issue 8 helpers: names, IP sources, static records --------------------------------------
def _dns_label(value: str) -> str:
    """One DNS label (a namespace, an area), lower-cased."""
    label = value.strip().lower()
    if not (label.isascii() and _LABEL.match(label)):
        raise ValueError(f"{value!r} is not a DNS label (a-z, 0-9, '-', 1-63 chars)")
    return label


def _static_ips(value: Any) -> Any:
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


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
IpSource = Literal["annotation", "external", "internal"]


class NameServer(model.Frozen):
    """An NS target; in-zone names need glue so resolvers can reach them."""

    name: DnsName
    ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()


class Settings(BaseSettings):
    """All of node-dns' configuration; see the module docstring for how names map."""

    model_config = SettingsConfigDict(
        env_prefix="NODE_DNS_",
        extra="forbid",
        frozen=True,
        validate_default=True,
        case_sensitive=False,
    )

    # --- zone content -------------------------------------------------------------------------
    zone: DnsName = Field(description="The zone served, e.g. lb.example.net. Required.")
    nameservers: Annotated[list[NameServer], NoDecode, BeforeValidator(_parse_nameservers)] = Field(
        description=(
            "NS records of the apex: 'name[=ip,ip]' entries separated by ';'. In-zone names must "
            "carry glue IPs. Required."
        ),
    )
    soa_email: str = Field(
        description="Responsible mailbox for the SOA (hostmaster@example.net). Required.",
    )
    record_ttl: int = Field(30, ge=0, le=2_147_483_647, description="TTL of area A/AAAA, seconds.")
    ns_ttl: int = Field(3600, ge=0, le=2_147_483_647, description="TTL of apex NS and glue, seconds.")
    soa_ttl: int = Field(300, ge=0, le=2_147_483_647, description="TTL of the SOA record, seconds.")
    soa_refresh: int = Field(3600, ge=1, le=2_147_483_647, description="SOA REFRESH, seconds.")
    soa_retry: int = Field(600, ge=1, le=2_147_483_647, description="SOA RETRY, seconds.")
    soa_expire: int = Field(86400, ge=1, le=2_147_483_647, description="SOA EXPIRE, seconds.")
    negative_ttl: int = Field(
        30,
        ge=0,
        le=86400,
        description="SOA MINIMUM: how long resolvers cache NXDOMAIN/NODATA, seconds (RFC 2308).",
    )

    # --- node source ----------------------------------------------------------------------------
    areas_annotation: AnnotationKey = Field(
        "node-dns/areas", description="Node annotation listing the node's areas (comma separated)."
    )
    ips_annotation: AnnotationKey = Field(
        "node-dns/ips", description="Node annotation listing the node's external IPs (comma separated)."
    )
    cordoned_healthy: bool = Field(
        False, description="Count cordoned (unschedulable) nodes as healthy. Default: they are not."
    )
    resync_interval: float = Field(
        300.0,
        ge=5,
        le=86400,
        description=(
            "Seconds between full re-lists that reconcile the zone against the apiserver, so nodes "
            "deleted while a watch was down cannot linger."
        ),
    )

    # --- DNS listeners --------------------------------------------------------------------------
    dns_address: str = Field("0.0.0.0", description="Address the UDP and TCP listeners bind to.")
    dns_port: int = Field(5353, ge=0, le=65535, description="Port for UDP and TCP (0 picks one).")
    edns_udp_size: int = Field(
        1232, ge=512, le=4096, description="UDP payload size advertised in EDNS replies, bytes."
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

    # --- HTTP: health and metrics -----------------------------------------------------------
    http_address: str = Field("0.0.0.0", description="Address of the /healthz, /readyz, /metrics server.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server (0 picks one).")

    # --- Kubernetes access ----------------------------------------------------------------------
    kubeconfig: str | None = Field(
        None,
        description=(
            "Path(s) to a kubeconfig (':'-separated). Unset: the pod's service account, else "
            "$KUBECONFIG or ~/.kube/config. Exec plugins and auth providers are supported."
        ),
    )

    # --- logging -------------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")

    # --- reliability (issue 7): fail-open and response rate limiting ---------------------------
    fail_open: bool = Field(
        True,
        description=(
            "When an area has fewer healthy nodes than the minimums below, serve every known "
            "address of it instead of none. --no-fail-open turns this off (strict NODATA)."
        ),
    )
    fail_open_min_healthy: int = Field(
        1,
        ge=0,
        le=1_000_000,
        description="Fail open when an area has fewer healthy nodes than this (1: when none is healthy).",
    )
    fail_open_min_fraction: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Fail open when the healthy share of an area's nodes is below this (0..1; 0: off).",
    )
    rrl_responses_per_second: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description=(
            "Response rate limiting over UDP: answers per second per client prefix (0: off). "
            "TCP is never limited."
        ),
    )
    rrl_nxdomains_per_second: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=(
            "NXDOMAIN answers per second per client prefix. Unset: same as "
            "--rrl-responses-per-second; 0: NXDOMAINs are not limited separately."
        ),
    )
    rrl_slip: int = Field(
        2,
        ge=0,
        le=10,
        description=(
            "Every Nth rate-limited answer is sent truncated (TC=1) so real clients retry over "
            "TCP; the others are dropped. 0: drop all, 1: truncate all."
        ),
    )
    rrl_window: float = Field(
        15.0,
        ge=1,
        le=3600,
        allow_inf_nan=False,
        description="Seconds over which a client's rate is averaged; a flooder stays limited this long.",
    )
    rrl_ipv4_prefix: int = Field(
        24, ge=1, le=32, description="IPv4 clients are limited per prefix of this length."
    )
    rrl_ipv6_prefix: int = Field(
        56, ge=1, le=128, description="IPv6 clients are limited per prefix of this length."
    )
    rrl_exempt: Annotated[list[str], NoDecode, BeforeValidator(_split_list)] = Field(
        default_factory=list,
        description="Client networks (CIDRs, comma separated) never rate limited, e.g. your resolvers.",
    )

    @field_validator("rrl_exempt")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IPv4 or IPv6 network (CIDR)") from None
        return networks

    # --- end of the reliability group ------------------------------------------------------------

    # --- records (issue 8): Services, IP sources, static records, answer limits, debug --------
    services: bool = Field(
        False,
        description=(
            "Serve <service>.<namespace>.<zone> for Services opted in by --service-annotation: the "
            "IPs of healthy nodes hosting a ready endpoint. Needs get/list/watch on services and "
            "endpointslices."
        ),
    )
    service_annotation: AnnotationKey = Field(
        "node-dns/expose", description='Service annotation that opts a Service in when its value is "true".'
    )
    service_namespaces: Annotated[tuple[DnsLabel, ...], NoDecode, BeforeValidator(_split_list)] = Field(
        (),
        description=(
            "Namespaces whose Services are served (comma separated). Empty: all namespaces "
            "(needs a ClusterRole); otherwise Roles in these namespaces are enough."
        ),
    )
    ip_sources: Annotated[tuple[IpSource, ...], NoDecode, BeforeValidator(_split_list)] = Field(
        ("annotation",),
        description=(
            "Where a node's IPs come from, in order: annotation (--ips-annotation), external "
            "(status ExternalIP), internal (status InternalIP). The first source that yields an "
            "address wins; the others are not mixed in."
        ),
    )
    static_records: Annotated[
        dict[DnsLabel, tuple[model.IPAddress, ...]],
        NoDecode,
        BeforeValidator(_static_ips),
        BeforeValidator(_parse_static),
    ] = Field(
        default_factory=dict,
        description=(
            "Extra IPs per area, always served (also when no node lists the area): "
            "'area=IP,IP; other=IP'. Fail-open thresholds count node IPs only."
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
    debug_endpoints: bool = Field(
        False, description="Serve /debug/zone on the HTTP server: the zone file being served right now."
    )

    @field_validator("ip_sources")
    @classmethod
    def _ip_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one source is required (annotation, external, internal)")
        if len(set(value)) != len(value):
            raise ValueError("each source may appear once")
        return value

    @field_validator("service_namespaces")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("static_records")
    @classmethod
    def _static_areas(
        cls, value: dict[str, tuple[model.IPAddress, ...]]
    ) -> dict[str, tuple[model.IPAddress, ...]]:
        for area in value:
            if area in model.FAMILY_PREFIXES:
                raise ValueError(f"area {area!r} is reserved for the family prefixes (v4., v6.)")
        return value

    # --- end of the records group ----------------------------------------------------------------

    # --- leader election (issue 5) ---------------------------------------------------------------
    leader_elect: bool = Field(
        False,
        description=(
            "Elect a leader through a coordination.k8s.io/v1 Lease; only the leader performs "
            "cluster-wide side effects (Events). Every replica serves DNS either way."
        ),
    )
    leader_lease_name: DnsName = Field("node-dns", description="Name of the leader election Lease.")
    leader_lease_namespace: str | None = Field(
        None,
        description=(
            "Namespace of the Lease. Unset: the pod's namespace (service account mount), else default."
        ),
    )
    leader_identity: str | None = Field(
        None,
        description="This replica's name in the Lease. Unset: $POD_NAME, else <hostname>_<random>.",
    )
    leader_lease_duration: float = Field(
        15.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds a Lease stays valid without renewal; others take over after that.",
    )
    leader_renew_deadline: float = Field(
        10.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds the leader may go without a successful renewal before it stops leading; "
            "must be less than --leader-lease-duration."
        ),
    )
    leader_retry_period: float = Field(
        2.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds between attempts to acquire or renew (jittered up to 2.2x); "
            "--leader-renew-deadline must exceed 1.2x this."
        ),
    )
    leader_record_events: bool | None = Field(
        None,
        description=(
            "The leader records invalid node annotations as Warning Events (namespace default, "
            "needs events: create there). Unset: on with --leader-elect."
        ),
    )

    @field_validator("leader_lease_namespace")
    @classmethod
    def _lease_namespace(cls, value: str | None) -> str:
        if value is None:
            try:
                with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as file:
                    value = file.read().strip() or "default"
            except OSError:
                value = "default"
        if not _LABEL.match(value):
            raise ValueError(f"{value!r} is not a valid namespace name (a DNS label)")
        return value

    @field_validator("leader_identity")
    @classmethod
    def _identity(cls, value: str | None) -> str:
        if value is None:
            import os
            import secrets
            import socket

            value = os.environ.get("POD_NAME") or f"{socket.gethostname()}_{secrets.token_hex(4)}"
        value = value.strip()
        if not value or len(value) > 253:
            raise ValueError("must be 1 to 253 characters")
        return value

    @field_validator("leader_renew_deadline")
    @classmethod
    def _renew_deadline(cls, value: float, info: ValidationInfo) -> float:
        duration = info.data.get("leader_lease_duration")
        if duration is not None and not value < duration:
            raise ValueError(f"must be less than --leader-lease-duration ({duration:g}), got {value:g}")
        return value

    @field_validator("leader_retry_period")
    @classmethod
    def _retry_period(cls, value: float, info: ValidationInfo) -> float:
        deadline = info.data.get("leader_renew_deadline")
        if deadline is not None and not deadline > 1.2 * value:
            raise ValueError(
                f"must be less than --leader-renew-deadline / 1.2 ({deadline / 1.2:g}; 1.2 is "
                f"client-go's jitter factor), got {value:g}"
            )
        return value

    @field_validator("leader_record_events")
    @classmethod
    def _record_events(cls, value: bool | None, info: ValidationInfo) -> bool:
        elect = bool(info.data.get("leader_elect"))
        if value and not elect:
            raise ValueError("needs --leader-elect: only an elected leader records events")
        return elect if value is None else value

    # --- end of the leader election group -------------------------------------------------------

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("soa_email")
    @classmethod
    def _email(cls, value: str) -> str:
        local, at, domain = value.strip().partition("@")
        if not at or not local or "@" in domain:
            raise ValueError("must be a mailbox like hostmaster@example.net")
        if not re.match(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,63}$", local):
            raise ValueError("local part has characters a DNS label cannot carry")
        _dns_name(domain)
        return value.strip()

    @field_validator("dns_address", "http_address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
        return value

    @model_validator(mode="after")
    def _check_nameservers(self) -> Settings:
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


def describe_error(error: ValidationError) -> str:
    """One line per failure, naming the setting as the user spells it (flag and env var)."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not isinstance(part, int)]
        field = loc[0] if loc else ""
        msg = item["msg"].removeprefix("Value error, ")
        if not field:
            # Checks across fields say which setting they are about: "nameservers: ...".
            named, sep, rest = msg.partition(": ")
            if not (sep and named in Settings.model_fields):
                lines.append(f"invalid settings: {msg}")
                continue
            field, msg = named, rest
        flag = "--" + field.replace("_", "-")
        env = "NODE_DNS_" + field.upper()
        if item["type"] == "missing":
            msg = "is required"
        lines.append(f"invalid setting {flag} ({env}): {msg}")
    return "; ".join(lines)


def field_names() -> list[str]:
    return list(Settings.model_fields)
