"""Each setting as documentation sees it: group, flag, env var, default, meaning, Helm value.

``--help``, the README settings table (tools/settings_table.py) and the chart tests read this,
so what they show is the model itself.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from node_dns.settings import GROUPS, Group, errors
from node_dns.settings.group import chart
from node_dns.settings.spec import Section, Setting, spelled
from node_dns.settings.spec import help_text as spec_help_text


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


def agent_by_group() -> list[tuple[Section, list[Entry]]]:
    """The settings of ``node-dns agent``, section by section (plain settings, see
    :mod:`node_dns.settings.spec`), as entries like the controller's."""
    from node_dns.settings import agent

    return [
        (section, [_plain_entry(section, setting) for setting in section.settings])
        for section in agent.SECTIONS
    ]


def _plain_entry(section: Section, setting: Setting) -> Entry:
    return Entry(
        name=setting.name,
        group=section.title,
        flag=setting.flag,
        env=setting.env,
        default=spelled(setting.default),
        description=setting.description,
        is_bool=setting.kind is bool,
        chart=setting.chart,
        info=field_info(setting),
    )


def field_info(setting: Setting) -> FieldInfo:
    """A plain setting as pydantic would declare it: its type, default, bounds and Helm value, so
    the chart and README checks read both kinds of setting alike."""
    kind: Any = Literal.__getitem__(setting.choices) if setting.choices else setting.kind
    if setting.many:
        kind = tuple.__class_getitem__((kind if setting.choices else str, ...))
    if setting.nullable:
        kind = kind | None
    declared = Field(
        setting.default,
        description=setting.description,
        json_schema_extra=chart(setting.chart),
        ge=setting.minimum,
        le=setting.maximum,
    )
    return FieldInfo.from_annotated_attribute(kind, declared)


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
    return spec_help_text(entry.description, entry.default, entry.env)


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


def chart_path(name: str, info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "chart" in extra:
        path = extra["chart"]
        return path if isinstance(path, str) else None
    head, *rest = name.split("_")
    return "config." + head + "".join(part.capitalize() for part in rest)
