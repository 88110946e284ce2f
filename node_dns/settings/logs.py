"""Logging settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from node_dns.settings.group import Group


class LogSettings(Group):
    """How much is logged, and in which format."""

    title = "Logging"

    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value
