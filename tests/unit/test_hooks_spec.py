"""The hooks file: documented keys, defaults, and one-line errors that name the hook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node_dns.sinks.hooks import spec
from node_dns.sinks.hooks.spec import HookConfigError


def parse(text: str, base: Path = Path("/nonexistent")) -> tuple[spec.HookSpec, ...]:
    return spec.parse(text, base)


def test_a_hook_takes_the_documented_keys_and_defaults() -> None:
    (hook,) = parse(
        """
hooks:
  - name: dnsdist
    template: "{{ zone }}"
    output: /run/out/backends.lua
    command: [dnsdist, -c, -e, "dofile('x')"]
"""
    )
    assert hook.name == "dnsdist"
    assert hook.command == ("dnsdist", "-c", "-e", "dofile('x')")
    assert (hook.debounce, hook.timeout, hook.min_nodes, hook.leader_only) == (0.2, 30.0, 0, False)


def test_template_file_is_read_relative_to_the_hooks_file(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ serial }}\n")
    (hook,) = parse("hooks: [{name: a, template_file: t.j2, output: /tmp/a}]", tmp_path)
    assert hook.template == "{{ serial }}\n"


def test_an_empty_file_has_no_hooks() -> None:
    assert parse("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hooks: [{name: a, output: /tmp/a}]", "hook 'a': give exactly one of template and template_file"),
        ("hooks: [{name: a, template: x, template_file: y, output: /tmp/a}]", "hook 'a': give exactly one"),
        ("hooks: [{name: a, template: x}]", "hook 'a' output: is required"),
        ("hooks: [{template: x, output: /tmp/a}]", "hooks[0] name: is required"),
        (
            "hooks: [{name: a, template: x, output: /tmp/a, debounse: 1}]",
            "hook 'a' debounse: is not a known key",
        ),
        ("hooks: [{name: a, template: x, output: /tmp/a, command: []}]", "hook 'a' command: command must be"),
        ("hooks: [{name: a, template: x, output: /tmp/a, timeout: 0}]", "hook 'a' timeout: Input should be"),
        ("hooks: [{name: 'a b', template: x, output: /tmp/a}]", "hook 'a b' name: name must be"),
        (
            "hooks: [{name: a, template: x, output: /tmp/a}, {name: a, template: x, output: /tmp/b}]",
            "hook names must be unique: a",
        ),
        (
            "hooks: [{name: a, template: x, output: /tmp/a}, {name: b, template: x, output: /tmp/a}]",
            "two hooks write the same output: /tmp/a",
        ),
        ("hooks: [{name: a\n  template: x", "not valid YAML line"),
        ("- a\n- b\n", "must be a mapping with a 'hooks' list"),
    ],
)
def test_bad_files_fail_with_one_line(text: str, message: str) -> None:
    with pytest.raises(HookConfigError) as caught:
        parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_template_file_names_the_hook_and_the_path(tmp_path: Path) -> None:
    with pytest.raises(HookConfigError, match=r"hook 'a': template_file .*/gone.j2: No such file"):
        parse("hooks: [{name: a, template_file: gone.j2, output: /tmp/a}]", tmp_path)


def test_an_unreadable_hooks_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HookConfigError, match=r"cannot read .*/none.yaml: No such file"):
        spec.load(tmp_path / "none.yaml")


def test_the_readme_key_table_states_the_defaults() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("| key | default | meaning |") :].split("\n\n")[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `([^`]+)` \|", table, re.MULTILINE))
    assert rows == {
        "timeout": "30",
        "debounce": "0.2",
        "min_nodes": "0",
        "leader_only": "false",
        "retry_max": "60",
    }
    for key, stated in rows.items():
        default = spec.HookSpec.model_fields[key].default
        assert str(default).lower().removesuffix(".0") == stated, key
