"""Health policy settings: which nodes count as healthy, and when an area fails open."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group


class PolicySettings(Group):
    """Which nodes are healthy, and what an area (or a Service) below its minimum serves."""

    title = "Health and fail-open"

    cordoned_healthy: bool = Field(
        False, description="Count cordoned (unschedulable) nodes as healthy. Default: they are not."
    )
    fail_open: bool = Field(
        True,
        description=(
            "When an area (or a Service's endpoint nodes) has fewer healthy nodes than the minimums "
            "below, serve every known address of it instead of none. --no-fail-open turns this off "
            "for both (strict NODATA)."
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
