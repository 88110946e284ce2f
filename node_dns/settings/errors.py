"""How a bad setting is reported: one line naming the flag and the env var, then exit 2.

A rule is written in terms of setting names (``leader_renew_deadline``); this module spells
them the way the user typed them (``--leader-renew-deadline``), so the rule and its message
need not know whether a value came from a flag, an env var or the chart.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic is not imported by the node agent, which also reports through here
    from pydantic import ValidationError
    from pydantic_settings import SettingsConfigDict

ENV_PREFIX = "NODE_DNS_"

MODEL_CONFIG: SettingsConfigDict = {
    "env_prefix": ENV_PREFIX,
    "extra": "forbid",
    "frozen": True,
    "validate_default": True,
    "case_sensitive": False,
}
"""How every command's settings model reads its environment: one prefix, unknown names refused."""
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def flag(name: str) -> str:
    """``record_ttl`` -> ``--record-ttl``."""
    return "--" + name.replace("_", "-")


def env(name: str) -> str:
    """``record_ttl`` -> ``NODE_DNS_RECORD_TTL``."""
    return ENV_PREFIX + name.upper()


class SettingError(ValueError):
    """A setting found invalid after parsing (at startup, where I/O is allowed)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def line(name: str, message: str, names: Collection[str] = ()) -> str:
    """``invalid setting --flag (NODE_DNS_ENV): message``, other settings in it spelled as flags."""
    return f"invalid setting {flag(name)} ({env(name)}): {_as_flags(message, names)}"


def describe_error(error: ValidationError, names: Collection[str]) -> str:
    """One line per failure (joined with '; '), naming the setting as the user spells it."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not isinstance(part, int)]
        field = loc[0] if loc else ""
        msg = item["msg"].removeprefix("Value error, ")
        if not field:
            # Rules across fields say which setting they are about: "nameservers: ...".
            named, sep, rest = msg.partition(": ")
            if not (sep and named in names):
                lines.append(f"invalid settings: {_as_flags(msg, names)}")
                continue
            field, msg = named, rest
        if item["type"] == "missing":
            msg = "is required"
        lines.append(line(field, msg, names))
    return "; ".join(lines)


def _as_flags(message: str, names: Collection[str]) -> str:
    return _SNAKE.sub(lambda m: flag(m[0]) if m[0] in names else m[0], message)
