"""Settings declared without pydantic: for a command that must stay small (the node agent).

Importing pydantic and pydantic-settings and building a settings model costs 12-20 MB of RSS,
half the node agent's 40 MB budget, for a dozen flags read once. A :class:`Setting` is what
such a command needs of a setting: its name (the flag ``--name-with-dashes`` and the env var
``NODE_DNS_NAME``, spelled by :mod:`node_dns.settings.errors` as for the controller), default,
meaning, Helm value and a pure parser that raises ``ValueError`` with the rule broken. The
bounds and choices are data, so ``--help``, the README table and the chart tests read them
(:mod:`node_dns.settings.catalog` turns them into the same entries as the pydantic groups').

Values come from flags first, then environment variables (names case-insensitive, as for the
controller); a value is the text typed, or the default (itself never parsed: it is valid).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node_dns.settings import errors

Parser = Callable[[str], Any]

_ANNOTATION_KEY = re.compile(
    r"^(?:(?=.{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class Setting:
    """One setting of a pydantic-free command; ``kind`` is the Python type of its value."""

    name: str
    default: Any
    description: str
    parse: Parser
    kind: type = str
    chart: str | None = None
    """Helm value that sets it (a path in values.yaml); None: the chart sets none."""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    """For a choice (or a list of choices): the words accepted."""
    nullable: bool = False
    many: bool = False
    """A list (comma or whitespace separated)."""

    @property
    def flag(self) -> str:
        return errors.flag(self.name)

    @property
    def env(self) -> str:
        return errors.env(self.name)


@dataclass(frozen=True)
class Section:
    """A group of settings as ``--help`` and the README show it: a title and a docstring."""

    title: str
    doc: str
    settings: tuple[Setting, ...] = field(default_factory=tuple)


def spelled(value: Any) -> str:
    """A value spelled as a flag or env var takes it: true, 1.5, a,b, area=IP; unset, empty."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "; ".join(f"{k}={','.join(map(str, v))}" for k, v in value.items()) or "empty"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "empty"
    return str(value) or "empty"


def help_text(description: str, default: str, env: str) -> str:
    """What ``--help`` says of a setting: its meaning, its default, its env var."""
    stated = "" if default == "required" else f" Default: {default}."
    return f"{description}{stated} Env: {env}."


def read(
    settings: Iterable[Setting], flags: Mapping[str, str | bool | None], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Every setting's value by name; ``SettingError`` naming the first one that is invalid.

    ``flags`` are texts, except a boolean's ``--flag``/``--no-flag``, which argparse gives as a bool.
    """
    upper = {key.upper(): value for key, value in environ.items()}
    values: dict[str, Any] = {}
    for setting in settings:
        given = flags.get(setting.name)
        if isinstance(given, bool):
            values[setting.name] = given
            continue
        if given is None:
            given = upper.get(setting.env)
        if given is None:
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(given)
        except ValueError as error:
            raise errors.SettingError(setting.name, str(error)) from None
    return values


# --- parsers ------------------------------------------------------------------------------------


def boolean(value: str) -> bool:
    """The words pydantic accepts for a boolean, so a value means the same to both commands."""
    word = value.strip().lower()
    if word in ("1", "true", "t", "yes", "y", "on"):
        return True
    if word in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true, false)")


def integer(minimum: int, maximum: int) -> Parser:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an integer") from None
        if not minimum <= number <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, got {number}")
        return number

    return parse


def number(minimum: float, maximum: float) -> Parser:
    def parse(value: str) -> float:
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(result) or not minimum <= result <= maximum:
            raise ValueError(f"must be between {minimum:g} and {maximum:g}, got {value.strip()}")
        return result

    return parse


def choice(options: tuple[str, ...], *, lower: bool = False) -> Parser:
    def parse(value: str) -> str:
        word = value.strip().lower() if lower else value.strip()
        if word not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return word

    return parse


def optional_text(value: str) -> str | None:
    """Text as given; empty means unset."""
    return value or None


def annotation_key(value: str) -> str:
    key = value.strip()
    if not _ANNOTATION_KEY.match(key):
        raise ValueError(f"{value!r} is not a valid Kubernetes annotation key (prefix/name)")
    return key


def ip_text(value: str) -> str:
    """An IPv4 or IPv6 address to bind to, kept as the text given."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    return value


def split_list(value: Any) -> Any:
    """Accept a list, or a comma/whitespace separated string (flags and env vars)."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value) if part]
    return value


def networks(entries: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Each entry as a normalised IPv4 or IPv6 network (host bits allowed), or a ValueError
    naming the first entry that is not one."""
    result = []
    for entry in entries:
        try:
            result.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IPv4 or IPv6 network (CIDR)") from None
    return tuple(result)
