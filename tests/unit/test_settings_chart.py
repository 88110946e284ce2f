"""The chart's values.yaml and values.schema.json agree with the settings model.

Every setting names its Helm value (node_dns.settings.catalog); the value must exist in
values.yaml and in the schema, carry the controller's default (or null: leave it to the
controller), and the schema must accept exactly the type and bounds the model accepts. A
setting added without its chart value, or a default or bound changed on one side only, fails
here -- without Helm; tests/integration/test_chart.py renders the chart.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
import pytest
import yaml
from pydantic_core import PydanticUndefined

from node_dns.settings import catalog

CHART = Path(__file__).resolve().parents[2] / "charts" / "node-dns"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
AGENT_ENTRIES = [entry for _, entries in catalog.agent_by_group() for entry in entries]
SETTINGS = list({entry.name: entry for entry in catalog.entries() + AGENT_ENTRIES if entry.chart}.values())
IDS = [entry.name for entry in SETTINGS]

CHART_DEFAULTS: dict[str, tuple[Any, str]] = {
    "log_json": (True, "log collectors in a cluster read JSON lines"),
    "leader_lease_name": ("", "empty: the release's full name, so two releases never share a Lease"),
    "leader_record_events": (True, "the chart grants events: create when leader election is on"),
}
"""Settings whose chart default differs from the controller's on purpose, and why."""

NARROWER: dict[str, tuple[dict[str, Any], str]] = {
    "dns_port": ({"minimum": 1}, "a container port is fixed: 0 (pick a free one) cannot be probed"),
    "http_port": ({"minimum": 1}, "the probes and the metrics Service need the port in advance"),
}
"""Bounds the chart narrows on purpose, and why."""

SECTIONS = {"config", "soa", "leaderElection", "services", "agent.config"}
"""values.yaml sections that hold settings (besides top-level zone and nameservers)."""


def _lookup(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"{path} is missing"
        node = node[key]
    return node


def _schema(path: str) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA
    for key in path.split("."):
        properties = node.get("properties", {})
        assert key in properties, f"values.schema.json has no {path}"
        node = properties[key]
    return node


def _plain(annotation: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); Annotated/aliases unwrapped to their origin."""
    nullable = False
    if get_origin(annotation) in (types.UnionType, typing.Union):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0]
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return (get_origin(annotation) or annotation), nullable


JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string", list: "array", tuple: "array"}


@pytest.mark.parametrize("entry", SETTINGS, ids=IDS)
def test_every_setting_has_its_value_in_values_yaml_and_the_schema(entry: catalog.Entry) -> None:
    assert entry.chart
    _lookup(VALUES, entry.chart)
    _schema(entry.chart)


@pytest.mark.parametrize("entry", SETTINGS, ids=IDS)
def test_chart_defaults_are_the_controllers_or_null(entry: catalog.Entry) -> None:
    assert entry.chart
    chart_value = _lookup(VALUES, entry.chart)
    model_value = catalog.default_value(entry.info)
    if model_value is PydanticUndefined:  # required: the chart's placeholder is empty
        assert chart_value in ("", [], None)
        return
    if entry.name in CHART_DEFAULTS:
        assert chart_value == CHART_DEFAULTS[entry.name][0]
        return
    if chart_value is None:
        return
    assert catalog.spelled(chart_value) == catalog.spelled(model_value), (
        f"{entry.chart}: chart default {chart_value!r}, controller default {model_value!r}"
    )


@pytest.mark.parametrize("entry", SETTINGS, ids=IDS)
def test_schema_accepts_the_settings_type(entry: catalog.Entry) -> None:
    assert entry.chart
    schema = _schema(entry.chart)
    kind, _ = _plain(entry.info.annotation)
    if kind is Literal:
        assert set(schema["enum"]) - {None} == set(get_args(entry.info.annotation))
        return
    if kind is dict:
        assert "object" in _types(schema)
        return
    expected = JSON_TYPES.get(kind, "string")  # constrained strings (names, keys, addresses)
    assert expected in _types(schema), f"{entry.chart}: schema type {schema.get('type')}, model {kind}"


def _types(schema: dict[str, Any]) -> set[str]:
    kinds = schema.get("type", [])
    return {kinds} if isinstance(kinds, str) else set(kinds)


@pytest.mark.parametrize("entry", SETTINGS, ids=IDS)
def test_schema_bounds_are_the_settings_bounds(entry: catalog.Entry) -> None:
    assert entry.chart
    schema = _schema(entry.chart)
    model: dict[str, Any] = {}
    for item in entry.info.metadata:
        if isinstance(item, annotated_types.Ge):
            model["minimum"] = item.ge
        if isinstance(item, annotated_types.Gt):
            model["exclusiveMinimum"] = item.gt
        if isinstance(item, annotated_types.Le):
            model["maximum"] = item.le
        if isinstance(item, annotated_types.Lt):
            model["exclusiveMaximum"] = item.lt
    model.update(NARROWER.get(entry.name, ({}, ""))[0])
    bounds = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    chart = {key: schema[key] for key in bounds if key in schema}
    assert chart == model, f"{entry.chart}: schema bounds {chart}, settings bounds {model}"


def test_every_chart_setting_value_names_a_setting() -> None:
    named = {entry.chart for entry in SETTINGS}
    for section in sorted(SECTIONS):
        for key in _lookup(VALUES, section):
            assert f"{section}.{key}" in named, f"{section}.{key} in values.yaml is no controller setting"
        for key in _schema(section)["properties"]:
            assert f"{section}.{key}" in named, (
                f"{section}.{key} in values.schema.json is no controller setting"
            )


VALID: dict[str, list[str]] = {
    "zone": ["lb.example.net", "LB.Example.NET.", "a-b.c0.example"],
    "soa_email": ["hostmaster@example.net", "dns.admin@example.org"],
    "areas_annotation": ["node-dns/areas", "example.com/node-areas", "areas"],
    "ips_annotation": ["node-dns/ips", "ips.example.com/v1_addresses"],
    "service_annotation": ["node-dns/expose", "example.com/expose"],
    "dns_address": ["0.0.0.0", "::", "127.0.0.1", "fd00::53"],
    "http_address": ["0.0.0.0", "::1"],
    "rrl_exempt": ["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"],
    "leader_lease_name": ["node-dns", "dns.leader", "a"],
    "service_namespaces": ["web", "kube-system"],
    "discovered_annotation": ["node-dns/discovered-ips", "example.com/addresses"],
    "probe": ["tcp:443", "http://:8080/healthz", "https://:8443/", "dns:53:probe.example.net"],
}
"""Values the controller accepts: the chart's schema must not refuse them (lists: one item each)."""

BASE = {"zone": "lb.example.net", "nameservers": "ns1.example.org", "soa_email": "h@example.net"}


def _pattern(entry: catalog.Entry) -> str | None:
    assert entry.chart
    schema = _schema(entry.chart)
    pattern = schema.get("pattern") or schema.get("items", {}).get("pattern")
    return pattern if isinstance(pattern, str) else None


PATTERNED = [entry for entry in SETTINGS if _pattern(entry)]


@pytest.mark.parametrize("entry", PATTERNED, ids=[entry.name for entry in PATTERNED])
def test_the_schema_accepts_what_the_controller_accepts(entry: catalog.Entry) -> None:
    from node_dns.settings import Settings

    pattern = _pattern(entry)
    assert pattern
    examples = VALID.get(entry.name, [])
    assert examples, f"add valid values of {entry.name} to VALID"
    for value in examples:
        Settings(**{**BASE, entry.name: value})  # the controller takes it
        assert re.search(pattern, value), f"{entry.chart}: the schema refuses {value!r}"
    default = catalog.default_value(entry.info)
    for value in default if isinstance(default, list | tuple) else [default]:
        if isinstance(value, str) and value:
            assert re.search(pattern, value), f"{entry.chart}: the schema refuses the default {value!r}"
