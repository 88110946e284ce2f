"""Render hooks against real programs: a real node-dns watching a real apiserver renders the
shipped examples; dnsdist (reloaded through its console) sends queries only to the backends of
healthy nodes, and `haproxy -c` and `nginx -t` accept what was rendered."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration.hookkit import HAPROXY, NGINX, Backend, Dnsdist, example_hook, free_port_on_all
from tests.integration.livedns import AREAS_ANNOTATION, IPS_ANNOTATION, metric, node_reader, unique, wait_for

pytestmark = pytest.mark.controlplane


@pytest.fixture(scope="module")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return node_reader(control_plane, "hooks")[0]


@pytest.fixture
def created(control_plane: ControlPlane) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    control_plane.delete_nodes(names)


def add_node(plane: ControlPlane, created: list[str], area: str, ips: str, **kw: object) -> str:
    name = unique("hook")
    plane.create_node(name, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: ips}, **kw)  # type: ignore[arg-type]
    created.append(name)
    return name


def write_hooks(path: Path, *entries: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({"hooks": list(entries)}))
    return path


def test_dnsdist_sends_queries_only_to_healthy_nodes_and_drops_a_node_that_goes_not_ready(
    control_plane: ControlPlane, kubeconfig: Path, created: list[str], tmp_path: Path
) -> None:
    area = unique("edge")
    net = random.randint(2, 250)
    ips = [f"127.77.{net}.{i}" for i in (1, 2, 3)]
    port = free_port_on_all(ips)
    backends = [Backend(ip, port) for ip in ips]
    names = [add_node(control_plane, created, area, ip) for ip in ips]
    output = tmp_path / "backends.lua"
    try:
        with Dnsdist(tmp_path, output) as dnsdist:
            hook = example_hook(
                "dnsdist",
                tmp_path,
                {
                    '{% set area = "home" %}': f'{{% set area = "{area}" %}}',
                    "{% set port = 53 %}": f"{{% set port = {port} %}}",
                },
            )
            hook["command"] = [
                part.replace("/etc/dnsdist/dnsdist.conf", str(dnsdist.conf)).replace(
                    "/run/node-dns/hooks/backends.lua", str(output)
                )
                for part in hook["command"]  # type: ignore[attr-defined]
            ]
            hooks = write_hooks(tmp_path / "hooks.yaml", hook)
            with NodeDns(kubeconfig, extra_args=[f"--hooks-file={hooks}"]) as server:
                everyone = {f"{ip}:{port}" for ip in ips}
                wait_for(
                    lambda: dnsdist.servers() == dict.fromkeys(everyone, "up"),
                    timeout=20,
                    what="dnsdist lists every node's backend, up",
                )
                seen = {dnsdist.responder(f"q{i}.example.") for i in range(30)}
                assert seen == set(ips)

                control_plane.set_ready(names[1], False)
                flipped = time.monotonic()
                wait_for(
                    lambda: f"{ips[1]}:{port}" not in dnsdist.servers(),
                    timeout=10,
                    interval=0.01,
                    what="the NotReady node's backend leaves dnsdist",
                )
                left_after = time.monotonic() - flipped
                # Watch event + debounce (0.2 s) + render + console reload, on a shared machine.
                assert left_after < 3.0, left_after
                before = backends[1].queries
                seen = {dnsdist.responder(f"r{i}.example.") for i in range(30)}
                assert seen == {ips[0], ips[2]}
                assert backends[1].queries == before

                # The reload took effect inside dnsdist before its console client exited and was counted.
                wait_for(
                    lambda: (
                        (
                            metric(
                                server, "node_dns_hook_command_runs_total", hook="dnsdist", result="success"
                            )
                            or 0
                        )
                        >= 2
                    ),
                    timeout=10,
                    what="the second reload counted",
                )
                assert (
                    metric(server, "node_dns_hook_renders_total", hook="dnsdist", result="written") or 0
                ) >= 2
                assert metric(server, "node_dns_hook_last_success_timestamp_seconds", hook="dnsdist")
                print(f"NotReady node left dnsdist's showServers() {left_after * 1000:.0f} ms after the flip")
    finally:
        for backend in backends:
            backend.close()


def test_haproxy_and_nginx_accept_the_rendered_examples(
    control_plane: ControlPlane, kubeconfig: Path, created: list[str], tmp_path: Path
) -> None:
    area = unique("web")
    add_node(control_plane, created, area, "192.0.2.10,2001:db8::10")
    add_node(control_plane, created, area, "192.0.2.11")
    add_node(control_plane, created, area, "192.0.2.12", ready=False)
    set_area = {'{% set area = "home" %}': f'{{% set area = "{area}" %}}'}
    haproxy = example_hook("haproxy", tmp_path, set_area)
    haproxy["command"] = [HAPROXY, "-c", "-q", "-f", haproxy["output"]]
    nginx = example_hook("nginx", tmp_path, set_area)
    nginx_conf = tmp_path / "nginx.conf"
    nginx_conf.write_text(
        "error_log stderr;\npid nginx.pid;\nevents {}\n"
        f"http {{\n  access_log off;\n  include {nginx['output']};\n"
        f"  server {{ listen 127.0.0.1:8; location / {{ proxy_pass http://{area}; }} }}\n}}\n"
    )
    nginx["command"] = [NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(nginx_conf)]
    hooks = write_hooks(tmp_path / "hooks.yaml", haproxy, nginx)
    with NodeDns(kubeconfig, extra_args=[f"--hooks-file={hooks}"]) as server:
        for name in ("haproxy", "nginx"):
            wait_for(
                lambda name=name: metric(
                    server, "node_dns_hook_command_runs_total", hook=name, result="success"
                ),
                timeout=15,
                what=f"{name} accepted the rendered file",
            )
            assert metric(server, "node_dns_hook_command_runs_total", hook=name, result="failed") == 0
    rendered = Path(str(haproxy["output"])).read_text()
    assert "192.0.2.10:80 check" in rendered and "[2001:db8::10]:80 check" in rendered
    assert "192.0.2.11:80 check" in rendered and "192.0.2.12" not in rendered
    upstream = Path(str(nginx["output"])).read_text()
    assert "server 192.0.2.10:80;" in upstream and "server [2001:db8::10]:80;" in upstream
    assert "192.0.2.12" not in upstream
    for argv in (haproxy["command"], nginx["command"]):
        done = subprocess.run(argv, capture_output=True, text=True)  # type: ignore[call-overload]
        assert done.returncode == 0, done.stderr


def test_labels_reach_templates_and_an_undefined_name_keeps_the_last_good_file(
    control_plane: ControlPlane, kubeconfig: Path, created: list[str], tmp_path: Path
) -> None:
    area = unique("rack")
    name = add_node(control_plane, created, area, "192.0.2.20", labels={"rack": "r1"})
    template = (
        "{% for n in nodes if '" + area + "' in n.areas %}\n{{ n.name }} {{ n.labels.rack }}\n{% endfor %}\n"
    )
    output = tmp_path / "racks.txt"
    hooks = write_hooks(
        tmp_path / "hooks.yaml",
        {"name": "racks", "template": template, "output": str(output), "debounce": 0.05},
    )
    with NodeDns(kubeconfig, extra_args=[f"--hooks-file={hooks}"]) as server:
        wait_for(
            lambda: output.exists() and output.read_text() == f"{name} r1\n", timeout=10, what="first render"
        )
        # A label change moves nothing in DNS, yet the file follows it.
        control_plane.label(name, {"rack": "r2"})
        wait_for(lambda: output.read_text() == f"{name} r2\n", timeout=10, what="label change rendered")
        # Without the label the template fails: the last good file stays, counted and logged once.
        control_plane.label(name, {"rack": None})
        wait_for(
            lambda: metric(server, "node_dns_hook_renders_total", hook="racks", result="error"),
            timeout=10,
            what="render error counted",
        )
        control_plane.label(name, {"other": "x"})
        wait_for(
            lambda: (metric(server, "node_dns_hook_renders_total", hook="racks", result="error") or 0) >= 2,
            timeout=10,
            what="second render error counted",
        )
        assert output.read_text() == f"{name} r2\n"
        assert server.logs().count("hook racks: template line 2: undefined") == 1


def test_leader_only_hooks_run_on_the_leader_alone_and_move_with_leadership(
    control_plane: ControlPlane, created: list[str], tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    from tests.integration.test_leader_election import TIMINGS, leaders, least_privilege

    cluster = least_privilege(control_plane, unique_name)
    area = unique("lead")
    add_node(control_plane, created, area, "192.0.2.30")
    ran = tmp_path / "leader-runs"
    procs = {}
    for i in range(2):
        own = tmp_path / f"replica-{i}"
        own.mkdir()
        template = "{% for n in nodes if '" + area + "' in n.areas %}\n{{ n.name }}\n{% endfor %}\n"
        hooks = write_hooks(
            own / "hooks.yaml",
            {"name": "local", "template": template, "output": str(own / "local.txt"), "debounce": 0},
            {
                "name": "cluster",
                "template": template,
                "output": str(own / "cluster.txt"),
                "command": ["sh", "-c", f"echo replica-{i} >> {ran}"],
                "leader_only": True,
                "debounce": 0,
            },
        )
        procs[f"replica-{i}"] = NodeDns(
            cluster.kubeconfig,
            extra_args=[
                "--leader-elect",
                f"--leader-lease-name={cluster.lease}",
                f"--leader-lease-namespace={cluster.namespace}",
                f"--leader-identity=replica-{i}",
                "--no-leader-record-events",
                *TIMINGS,
                f"--hooks-file={hooks}",
            ],
        )
    try:
        for proc in procs.values():
            proc.start()
        for proc in procs.values():
            proc.wait_ready(30)
        first = wait_for(lambda: leaders(procs), timeout=15, what="a leader")[0]
        other = next(name for name in procs if name != first)
        wait_for(lambda: ran.exists() and ran.read_text() == f"{first}\n", timeout=10, what="leader hook ran")
        for name in procs:  # every replica renders its own hooks
            wait_for(
                lambda name=name: (tmp_path / name / "local.txt").exists(), timeout=10, what="local hook"
            )
        assert not (tmp_path / other / "cluster.txt").exists()

        procs[first].stop()  # releases the Lease: the other replica leads and runs its hook
        wait_for(
            lambda: ran.read_text() == f"{first}\n{other}\n", timeout=15, what="hook moved to the new leader"
        )
        assert (tmp_path / other / "cluster.txt").read_text() == (
            tmp_path / first / "cluster.txt"
        ).read_text()
    finally:
        for proc in procs.values():
            proc.stop(5)


def test_a_burst_of_200_changes_is_coalesced_and_min_nodes_keeps_the_last_good_file(
    control_plane: ControlPlane, kubeconfig: Path, created: list[str], tmp_path: Path
) -> None:
    area = unique("burst")
    # min_nodes counts the healthy nodes node-dns sees: select this test's nodes only, so nodes
    # other tests left in the shared cluster cannot keep the count above the guard.
    mine = {"hooks-test": area}
    names = [add_node(control_plane, created, area, f"192.0.2.{i + 1}", labels=mine) for i in range(10)]
    template = "{% for n in nodes if n.healthy and '" + area + "' in n.areas %}\n{{ n.name }}\n{% endfor %}\n"
    output, runs = tmp_path / "members.txt", tmp_path / "runs"
    hooks = write_hooks(
        tmp_path / "hooks.yaml",
        {
            "name": "burst",
            "template": template,
            "output": str(output),
            "command": ["sh", "-c", f"echo run >> {runs}"],
            "debounce": 0.5,
            "min_nodes": 3,
        },
    )
    selected = [f"--hooks-file={hooks}", f"--node-selector=hooks-test={area}"]
    with NodeDns(kubeconfig, extra_args=selected) as server:
        everyone = "".join(f"{n}\n" for n in sorted(names))
        wait_for(lambda: output.exists() and output.read_text() == everyone, timeout=10, what="first render")
        wait_for(runs.exists, timeout=10, what="first run")

        # 200 Ready flips as fast as the apiserver takes them; node 0 ends NotReady, the rest Ready.
        state = dict.fromkeys(names, True)
        for i in range(200):
            name = names[i % len(names)] if i < 199 else names[0]
            state[name] = not state[name] if i < 199 else False
            control_plane.set_ready(name, state[name])
        final = "".join(f"{n}\n" for n in sorted(names) if state[n])
        wait_for(lambda: output.read_text() == final, timeout=15, what="the final state rendered")

        # Each written file is followed by one run of the command: wait until the last write's run
        # has happened and been counted, then compare.
        def settled() -> bool:
            ran = len(runs.read_text().splitlines())
            counted = metric(server, "node_dns_hook_command_runs_total", hook="burst", result="success")
            written = metric(server, "node_dns_hook_renders_total", hook="burst", result="written")
            return counted == ran and written == ran

        wait_for(settled, timeout=10, what="a counted run for every written file")
        burst_runs = len(runs.read_text().splitlines()) - 1
        assert 1 <= burst_runs <= 40, burst_runs  # one per 0.5 s window, not one per change

        # Fewer than min_nodes healthy: the file keeps the last good list, counted and logged once
        # (the burst may have dipped below it already: every flip made all nodes NotReady once).
        logged = server.logs().count("fewer than min_nodes 3")
        for name in names[:8]:
            control_plane.set_ready(name, False)
        wait_for(
            lambda: metric(server, "node_dns_hook_guarded", hook="burst") == 1, timeout=10, what="guard holds"
        )
        assert output.read_text() == final
        control_plane.set_ready(names[9], True)
        wait_for(
            lambda: (metric(server, "node_dns_hook_renders_total", hook="burst", result="guarded") or 0) >= 2,
            timeout=10,
            what="still guarded",
        )
        assert output.read_text() == final
        assert server.logs().count("fewer than min_nodes 3") == logged + 1
