"""Each setting as documentation sees it: group, flag, env var, default, meaning, Helm value.

``--help``, the README settings table (tools/settings_table.py) and the chart tests read this,
so what they show is the model itself.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from node_dns.settings import GROUPS, Group, errors


@dataclass(frozen=True)
class Entry:
    name: str
    group: str
    flag: str
    env: str
    default: str
    """The default as it would be typed on the command line; "required" or "unset" otherwise."""
    description: str
    is_bool: bool
    chart: str | None
    """Path of the Helm value in charts/node-dns/values.yaml; None: the chart sets none."""
    info: FieldInfo


def entries() -> list[Entry]:
    """Every setting, group by group, in the order the groups are documented."""
    return [entry for _, group_entries in by_group() for entry in group_entries]


def by_group() -> list[tuple[type[Group], list[Entry]]]:
    """Each group (its docstring documents it) with its settings."""
    return [
        (group, [_entry(group, name, info) for name, info in group.model_fields.items()]) for group in GROUPS
    ]


def agent_by_group() -> list[tuple[type[Group], list[Entry]]]:
    """The settings of ``node-dns agent``, group by group; the annotation it writes is listed with
    its own group (the field is defined once, by the controller's node source group)."""
    from node_dns.settings.agent import AGENT_GROUPS, AgentCommandSettings, AgentSettings

    shared = AgentCommandSettings.model_fields["discovered_annotation"]
    result = []
    for group in AGENT_GROUPS:
        found = [_entry(group, name, info) for name, info in group.model_fields.items()]
        if group is AgentSettings:
            found.insert(1, _entry(group, "discovered_annotation", shared))
        result.append((group, found))
    return result


def _entry(group: type[Group], name: str, info: FieldInfo) -> Entry:
    return Entry(
        name=name,
        group=group.title,
        flag=errors.flag(name),
        env=errors.env(name),
        default=default_text(info),
        description=info.description or "",
        is_bool=is_bool(info.annotation),
        chart=chart_path(name, info),
        info=info,
    )


def help_text(entry: Entry) -> str:
    """What ``--help`` says of a setting: its meaning, its default, its env var."""
    default = "" if entry.default == "required" else f" Default: {entry.default}."
    return f"{entry.description}{default} Env: {entry.env}."


def is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if get_origin(annotation) in (types.UnionType, typing.Union):
        return bool in get_args(annotation)
    return False


def default_value(info: FieldInfo) -> Any:
    """The default as a Python value; PydanticUndefined when the setting is required."""
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def default_text(info: FieldInfo) -> str:
    value = default_value(info)
    if value is PydanticUndefined:
        return "required"
    return spelled(value)


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


def chart_path(name: str, info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "chart" in extra:
        path = extra["chart"]
        return path if isinstance(path, str) else None
    head, *rest = name.split("_")
    return "config." + head + "".join(part.capitalize() for part in rest)
