"""Reachability probe settings: one probe for every area from flags, per-area probes from a file.

The probe text and the file are parsed by :mod:`node_dns.settings.probe_spec`, the one place the
grammar is written; the file is read at startup (:func:`node_dns.settings.startup.resolve`),
since validators do no I/O.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from node_dns.settings import probe_spec as spec
from node_dns.settings.group import Group, chart
from node_dns.settings.values import DnsName


def _spec_check(check: str, value: str) -> None:
    try:
        if check == "probe":
            spec.parse(value)
        elif check == "status":
            spec.parse_status(value)
        else:
            spec.parse_rcode(value)
    except spec.SpecError as error:
        raise ValueError(str(error)) from None


class ProbeSettings(Group):
    """Reachability probes: a node serves an area only while its probe of that area passes.

    Probes only remove. They run from the controller pod's own network: node firewalls must let
    the pod's source addresses reach the probed port. With --leader-elect the leader probes and
    shares its verdicts through a ConfigMap that every replica answers from.
    """

    title = "Reachability probes"

    probe: str | None = Field(
        None,
        description=(
            "Probe for every area: tcp:PORT, http://:PORT/PATH, https://:PORT/PATH or dns:PORT:NAME, "
            "always against the node's own addresses. Unset: no probes (unless --probe-file names some)."
        ),
    )
    probe_file: str | None = Field(
        None,
        json_schema_extra=chart(None),
        description="YAML file of per-area probes (keys default: and areas:, see the README); over --probe.",
    )
    probe_interval: float = Field(
        2.0, gt=0, le=3600, allow_inf_nan=False, description="Seconds between probes of one address."
    )
    probe_timeout: float = Field(
        1.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds one probe may take; at most --probe-interval.",
    )
    probe_rise: int = Field(2, ge=1, le=100, description="Passes in a row that bring an address back.")
    probe_fall: int = Field(2, ge=1, le=100, description="Failures in a row that take an address out.")
    probe_jitter: float = Field(
        1.0,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Share of the interval over which probes of all addresses are spread.",
    )
    probe_http_status: str = Field("200-399", description="HTTP(S) statuses that pass: 200, 200-299 or 2xx.")
    probe_tls_verify: bool = Field(
        True, description="Verify HTTPS certificates (--no-probe-tls-verify turns it off)."
    )
    probe_sni: DnsName | None = Field(
        None, description="TLS server name sent and verified by HTTPS probes (unset: the address)."
    )
    probe_ca_file: str | None = Field(
        None, description="CA bundle for HTTPS probes (unset: the system store)."
    )
    probe_dns_rcode: str = Field("NOERROR", description="Response code a DNS probe expects (name or number).")
    probe_concurrency: int = Field(256, ge=1, le=10_000, description="Probes in flight at most.")
    probe_self_fault_share: float = Field(
        0.5,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description=(
            "When more than this share of healthy nodes' addresses fail at once, assume our own "
            "network is at fault and keep the last verdicts (1: never)."
        ),
    )
    probe_verdicts_name: DnsName = Field(
        "node-dns-probe-verdicts",
        json_schema_extra=chart(None),
        description="ConfigMap (Lease namespace) the leader writes verdicts to and every replica reads.",
    )
    probe_verdicts_max_age: float = Field(
        60.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="A replica unable to read the verdicts for this many seconds falls back to Ready-only.",
    )

    @field_validator("probe")
    @classmethod
    def _probe(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip() or None
        if value is not None:
            _spec_check("probe", value)
        return value

    @field_validator("probe_http_status")
    @classmethod
    def _status(cls, value: str) -> str:
        _spec_check("status", value)
        return value

    @field_validator("probe_dns_rcode")
    @classmethod
    def _rcode(cls, value: str) -> str:
        _spec_check("rcode", value)
        return value

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> Self:
        if self.probe_timeout > self.probe_interval:
            raise ValueError(
                f"probe_timeout: must be at most probe_interval ({self.probe_interval:g}), "
                f"got {self.probe_timeout:g}"
            )
        return self

    @property
    def probes_enabled(self) -> bool:
        return self.probe is not None or self.probe_file is not None
