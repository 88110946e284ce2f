"""Hooks at startup: a bad hooks file or template exits 2 with one line naming the hook and line,
before anything binds or talks to the apiserver; without hooks, jinja2 is not even imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node_dns import cli

REQUIRED = [
    "serve",
    "--zone=lb.example.net",
    "--nameservers=ns1.lb.example.net=192.0.2.53",
    "--soa-email=hostmaster@example.net",
    "--kubeconfig=/nonexistent/kubeconfig",  # never read: the hooks are checked first
]


def run(hooks: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main([*REQUIRED, f"--hooks-file={hooks}"])
    return code, capsys.readouterr().err


def test_a_template_syntax_error_exits_2_naming_the_hook_and_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lb.j2").write_text("# header\n{% for n in nodes %}\n{{ n.name }\n{% endfor %}\n")
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(f"hooks: [{{name: lb, template_file: lb.j2, output: {tmp_path}/out}}]\n")
    code, err = run(hooks, capsys)
    assert code == 2
    assert err == (
        "node-dns: invalid setting --hooks-file (NODE_DNS_HOOKS_FILE): "
        "hook 'lb': template line 3: unexpected '}' (lb.j2)\n"
    )


def test_a_missing_output_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(f"hooks: [{{name: lb, template: x, output: {tmp_path}/none/out}}]\n")
    code, err = run(hooks, capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert f"hook 'lb': output directory {tmp_path}/none does not exist" in err


def test_a_missing_hooks_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(tmp_path / "none.yaml", capsys)
    assert code == 2
    assert err.startswith("node-dns: invalid setting --hooks-file (NODE_DNS_HOOKS_FILE): cannot read ")


def test_the_shipped_examples_compile(tmp_path: Path) -> None:
    from node_dns.sinks.hooks import runner, spec

    examples = Path(__file__).resolve().parents[2] / "examples" / "hooks"
    specs = [
        s.model_copy(update={"output": str(tmp_path / Path(s.output).name)})
        for s in spec.load(examples / "hooks.yaml")
    ]
    runner.check(specs)
    assert [s.name for s in specs] == ["dnsdist", "haproxy", "nginx"]


def test_starting_without_hooks_does_not_load_jinja2() -> None:
    probe = "import node_dns.cli, node_dns.app, sys; print('jinja2' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
