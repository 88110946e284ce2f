"""Response rate limiting settings: how fast one client prefix may be answered over UDP."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode

from node_dns.settings.group import Group
from node_dns.settings.values import networks, split_list


class RrlSettings(Group):
    """Response rate limiting over UDP (TCP is never limited): rates, slip, window, prefixes."""

    title = "Response rate limiting"

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
    rrl_exempt: Annotated[list[str], NoDecode, BeforeValidator(split_list)] = Field(
        default_factory=list,
        description="Client networks (CIDRs, comma separated) never rate limited, e.g. your resolvers.",
    )

    @field_validator("rrl_exempt")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return list(networks(value))
