"""`node-dns agent`: every bad setting, and a missing node name, exit 2 with one line naming it."""

from __future__ import annotations

import pytest

from node_dns import cli
from node_dns.settings import catalog

BAD = [
    ("agent_families", "ipv5"),
    ("agent_families", ""),
    ("agent_allowed_networks", "192.168.1.0/33"),
    ("agent_max_addresses", "0"),
    ("agent_reassert_interval", "1"),
    ("agent_http_address", "localhost"),
    ("agent_http_port", "70000"),
    ("agent_interfaces", "a/b"),
    ("discovered_annotation", "bad key!"),
    ("log_level", "loud"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_bad_agent_setting_exits_2_naming_flag_and_env(
    name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = "--" + name.replace("_", "-")

    code = cli.main(["agent", "--node-name=n1", f"{flag}={value}"])

    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"node-dns agent: invalid setting {flag} (NODE_DNS_{name.upper()}):")


def test_missing_node_name_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("NODE_DNS_NODE_NAME", raising=False)

    code = cli.main(["agent"])

    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "node-dns agent: invalid setting --node-name (NODE_DNS_NODE_NAME): is required: no node name "
        "(set NODE_NAME, as the chart does from spec.nodeName)"
    )


def test_unreadable_kubeconfig_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["agent", "--node-name=n1", "--kubeconfig=/nonexistent/kubeconfig"])

    assert code == 2
    assert capsys.readouterr().err.startswith("node-dns agent: invalid setting --kubeconfig")


def test_every_agent_setting_has_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["agent", "--help"])
    text = capsys.readouterr().out

    for _, entries in catalog.agent_by_group():
        for entry in entries:
            assert entry.flag in text
