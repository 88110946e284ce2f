"""The chart's render hooks: the shipped examples as values become a ConfigMap that node-dns'
own loader accepts, mounted with NODE_DNS_HOOKS_FILE, an output volume to share with sidecars,
and a checksum that rolls the pods when a hook changes (the file is read at startup)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_dns.sinks.hooks import spec, template
from tests.harness.helm import Helm, HelmError, Rendered
from tests.integration.hookkit import EXAMPLES

REQUIRED: dict[str, Any] = {
    "zone": "lb.example.net",
    "nameservers": [{"name": "ns1.lb.example.net", "ips": ["192.0.2.53"]}],
    "soa": {"email": "hostmaster@example.net"},
}


def example_values() -> dict[str, Any]:
    hooks = yaml.safe_load((EXAMPLES / "hooks.yaml").read_text())["hooks"]
    templates = {hook["template_file"]: (EXAMPLES / hook["template_file"]).read_text() for hook in hooks}
    return {**REQUIRED, "hooks": {"hooks": hooks, "templates": templates}}


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> Rendered:
    return helm.template(example_values())


def pod(rendered: Rendered) -> dict[str, Any]:
    spec_: dict[str, Any] = rendered.one("Deployment")["spec"]["template"]
    return spec_


def test_no_hooks_render_no_configmap_volume_or_setting(helm: Helm) -> None:
    plain = helm.template(REQUIRED)
    assert not [cm for cm in plain.all("ConfigMap") if cm["metadata"]["name"].endswith("-hooks")]
    assert "NODE_DNS_HOOKS_FILE" not in plain.env()
    assert "checksum/hooks" not in (pod(plain)["metadata"].get("annotations") or {})


def test_the_configmap_holds_a_hooks_file_node_dns_loads_and_compiles(
    rendered: Rendered, tmp_path: Path
) -> None:
    data = rendered.one("ConfigMap", "dns-node-dns-hooks")["data"]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    hooks = spec.load(tmp_path / "hooks.yaml")
    assert [hook.name for hook in hooks] == ["dnsdist", "haproxy", "nginx"]
    for hook in hooks:
        assert hook.template == (EXAMPLES / str(hook.template_file)).read_text()
        template.compile_template(hook.name, hook.template or "")


def test_the_controller_reads_the_mounted_file_and_writes_to_the_shared_volume(rendered: Rendered) -> None:
    assert rendered.env()["NODE_DNS_HOOKS_FILE"] == "/etc/node-dns/hooks/hooks.yaml"
    mounts = {m["name"]: m for m in rendered.container()["volumeMounts"]}
    assert mounts["hooks"] == {"name": "hooks", "mountPath": "/etc/node-dns/hooks", "readOnly": True}
    assert mounts["hooks-output"]["mountPath"] == "/run/node-dns/hooks"
    volumes = {v["name"]: v for v in pod(rendered)["spec"]["volumes"]}
    assert volumes["hooks"]["configMap"]["name"] == "dns-node-dns-hooks"
    assert volumes["hooks-output"]["emptyDir"] == {"sizeLimit": "16Mi"}
    for hook in spec.parse(rendered.one("ConfigMap", "dns-node-dns-hooks")["data"]["hooks.yaml"], EXAMPLES):
        assert hook.output.startswith("/run/node-dns/hooks/")


def test_a_changed_template_rolls_the_pods(helm: Helm, rendered: Rendered) -> None:
    changed = example_values()
    changed["hooks"]["templates"]["nginx-upstream.conf.j2"] += "# changed\n"
    before = pod(rendered)["metadata"]["annotations"]["checksum/hooks"]
    after = pod(helm.template(changed))["metadata"]["annotations"]["checksum/hooks"]
    assert before != after


def test_a_sidecar_shares_the_output_volume_and_may_share_processes(helm: Helm) -> None:
    values = example_values()
    sidecar = {
        "name": "dnsdist",
        "image": "example.org/dnsdist:1.9",
        "volumeMounts": [{"name": "hooks-output", "mountPath": "/run/node-dns/hooks", "readOnly": True}],
    }
    values["extraContainers"] = [sidecar]
    values["hooks"]["shareProcessNamespace"] = True
    spec_ = pod(helm.template(values))["spec"]
    assert [c["name"] for c in spec_["containers"]] == ["node-dns", "dnsdist"]
    assert spec_["containers"][1] == sidecar
    assert spec_["shareProcessNamespace"] is True


def test_the_schema_rejects_an_unknown_hook_key(helm: Helm) -> None:
    values = example_values()
    values["hooks"]["hooks"][0]["debounse"] = 1
    with pytest.raises(HelmError, match="debounse"):
        helm.template(values)


def test_the_chart_readme_states_the_hooks_defaults() -> None:
    chart = Path(__file__).resolve().parents[2] / "charts" / "node-dns"
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    assert defaults["hooks"] == {
        "hooks": [],
        "templates": {},
        "outputDir": "/run/node-dns/hooks",
        "outputSizeLimit": "16Mi",
        "shareProcessNamespace": False,
    }
    assert defaults["extraContainers"] == []
    readme = (chart / "README.md").read_text()
    for row in (
        "| `hooks.hooks` | `[]` |",
        "| `hooks.templates` | `{}` |",
        "| `hooks.outputDir` / `outputSizeLimit` | `/run/node-dns/hooks` / `16Mi` |",
        "| `hooks.shareProcessNamespace` | `false` |",
        "| `extraContainers` | `[]` |",
    ):
        assert row in readme
