"""docs/agent.md lists exactly the agent's metric families, with their labels."""

from __future__ import annotations

import re
from pathlib import Path

from node_dns.sinks import agent as agent_metrics

DOC = (Path(__file__).resolve().parents[2] / "docs" / "agent.md").read_text()


def _exposed() -> dict[str, set[str]]:
    inputs = agent_metrics.AgentInputs(
        published=lambda: {"ipv4": 1, "ipv6": 0},
        capped=lambda: 0,
        patches={"ok": 1, "error": 0},
        reads={"ok": 1, "error": 0},
        netlink_events={"RTM_NEWADDR": 1},
        netlink_overruns=lambda: 0,
        in_sync=lambda: True,
        last_change=lambda: 0.0,
    )
    found = {}
    for family in agent_metrics.AgentCollector(inputs).collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        found[name] = {label for sample in family.samples for label in sample.labels}
    return found


def _documented() -> dict[str, set[str]]:
    rows = re.findall(r"^\| `(node_dns_agent_[a-z_]+)(?:\{([a-z_,]*)\})?` \|", DOC, re.MULTILINE)
    return {name: set(labels.split(",")) if labels else set() for name, labels in rows}


def test_every_agent_metric_is_documented_with_its_labels() -> None:
    assert _documented() == _exposed()
