"""--node-selector: label-selector syntax checked at startup, normalised as sent to the apiserver."""

from __future__ import annotations

import pytest

from node_dns import cli
from node_dns.settings.selector import label_selector
from tests.unit.test_cli import REQUIRED


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("", ""),
        ("node-dns/serve=true", "node-dns/serve=true"),
        ("a == b, !c", "a==b,!c"),
        ("env in (prod, staging),tier notin (edge)", "env in (prod,staging),tier notin (edge)"),
        ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/control-plane"),
        ("!node-role.kubernetes.io/control-plane", "!node-role.kubernetes.io/control-plane"),
        ("tier!=edge", "tier!=edge"),
        ("rank>3", "rank>3"),
        ("empty=", "empty="),
    ],
)
def test_valid_selectors_are_normalised(given: str, sent: str) -> None:
    assert label_selector(given) == sent


@pytest.mark.parametrize(
    "bad",
    [
        "a b",
        "a=b=c",
        "a in (b c)",
        "a in b",
        "-a=b",
        "a=b,",
        "Example.com/x=y",
        "rank>high",
        "a=(",
        "x=" + "v" * 64,
        "k" * 64,
    ],
)
def test_invalid_selectors_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        label_selector(bad)


def test_a_bad_node_selector_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", *(f"--{k.replace('_', '-')}={v}" for k, v in REQUIRED.items())]

    code = cli.main([*argv, "--node-selector=a in (b c)"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(
        "node-dns: invalid setting --node-selector (NODE_DNS_NODE_SELECTOR): not a label selector"
    )
