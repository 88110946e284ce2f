"""Logging settings (defined in :mod:`node_dns.settings.common`, which the node agent reads too)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from node_dns.settings.common import LOG_JSON, LOG_LEVEL, LOGGING
from node_dns.settings.group import Group


class LogSettings(Group):
    __doc__ = LOGGING.doc
    title = LOGGING.title

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        LOG_LEVEL.default, description=LOG_LEVEL.description
    )
    """The words are :data:`node_dns.settings.common.LOG_LEVELS` (a test holds them equal)."""
    log_json: bool = Field(LOG_JSON.default, description=LOG_JSON.description)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value
