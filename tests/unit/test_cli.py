"""The command line: every bad setting exits 2 with exactly one stderr line naming its flag and
env var, before anything binds a socket or talks to the apiserver."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_dns import cli
from node_dns.settings import GROUPS, Settings, catalog
from node_dns.version import __version__

REQUIRED = {
    "zone": "lb.example.net",
    "nameservers": "ns1.lb.example.net=192.0.2.53",
    "soa_email": "hostmaster@example.net",
}

# (setting, bad value): one row per rule a setting has.
BAD = [
    ("zone", "bad_zone.example"),
    ("zone", ""),
    ("zone", "a" * 64 + ".example"),
    ("nameservers", ""),
    ("nameservers", "ns1.lb.example.net"),  # in the zone, without glue
    ("nameservers", "ns1.example.org=300.1.1.1"),
    ("nameservers", "bad_name.example.org"),
    ("soa_email", "hostmaster"),
    ("soa_email", "a@b@example.net"),
    ("record_ttl", "-1"),
    ("record_ttl", "thirty"),
    ("ns_ttl", "-1"),
    ("soa_ttl", "2147483648"),
    ("soa_refresh", "0"),
    ("soa_retry", "0"),
    ("soa_expire", "0"),
    ("negative_ttl", "86401"),
    ("areas_annotation", "bad key!"),
    ("ips_annotation", "/no-prefix"),
    ("resync_interval", "1"),
    ("dns_address", "localhost"),
    ("dns_port", "65536"),
    ("dns_port", "-1"),
    ("edns_udp_size", "511"),
    ("edns_udp_size", "4097"),
    ("tcp_idle_timeout", "0"),
    ("tcp_max_connections", "0"),
    ("tcp_max_queries", "-1"),
    ("http_address", "999.1.1.1"),
    ("http_port", "http"),
    ("log_level", "loud"),
]
BAD_IDS = [f"{name}={value[:20]}" for name, value in BAD]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_var(name: str) -> str:
    return "NODE_DNS_" + name.upper()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NODE_DNS_* from the developer's shell, and a kubeconfig that loads."""
    import os

    for key in list(os.environ):
        if key.startswith("NODE_DNS_"):
            monkeypatch.delenv(key)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def serve_argv(**values: str) -> list[str]:
    merged = {**REQUIRED, **values}
    return ["serve", *(f"{flag(k)}={v}" for k, v in merged.items())]


def assert_one_line_naming(err: str, name: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert flag(name) in lines[0]
    assert env_var(name) in lines[0]


@pytest.mark.parametrize(("name", "value"), BAD, ids=BAD_IDS)
def test_bad_flag_exits_2_with_one_line_naming_flag_and_env(
    name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(serve_argv(**{name: value}), capsys)

    assert code == 2
    assert out == ""
    assert_one_line_naming(err, name)


@pytest.mark.parametrize(("name", "value"), BAD, ids=BAD_IDS)
def test_bad_env_var_exits_2_with_one_line_naming_flag_and_env(
    name: str, value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, good in REQUIRED.items():
        monkeypatch.setenv(env_var(key), good)
    monkeypatch.setenv(env_var(name), value)

    code, _, err = run_main(["serve"], capsys)

    assert code == 2
    assert_one_line_naming(err, name)


@pytest.mark.parametrize(("name", "value"), [("log_json", "maybe"), ("cordoned_healthy", "perhaps")])
def test_bad_boolean_env_var_exits_2_naming_it(
    name: str, value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_var(name), value)

    code, _, err = run_main(serve_argv(), capsys)

    assert code == 2
    assert_one_line_naming(err, name)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_missing_required_setting_exits_2_naming_it(missing: str, capsys: pytest.CaptureFixture[str]) -> None:
    values = {k: v for k, v in REQUIRED.items() if k != missing}
    argv = ["serve", *(f"{flag(k)}={v}" for k, v in values.items())]

    code, _, err = run_main(argv, capsys)

    assert code == 2
    assert_one_line_naming(err, missing)
    assert "required" in err


def test_several_bad_settings_still_give_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(serve_argv(record_ttl="-1", dns_port="99999"), capsys)

    assert code == 2
    assert len(err.splitlines()) == 1
    assert "--record-ttl" in err and "--dns-port" in err


def test_missing_kubeconfig_file_exits_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_main(serve_argv(kubeconfig=str(tmp_path / "absent")), capsys)

    assert code == 2
    assert_one_line_naming(err, "kubeconfig")
    assert "absent" in err


@pytest.mark.parametrize(
    "content", ["garbage: [", "apiVersion: v1\nkind: Config\n", ""], ids=["not-yaml", "no-context", "empty"]
)
def test_unusable_kubeconfig_exits_2_naming_the_flag(
    content: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)

    code, _, err = run_main(serve_argv(kubeconfig=str(path)), capsys)

    assert code == 2
    assert_one_line_naming(err, "kubeconfig")


def test_no_kubeconfig_anywhere_exits_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    monkeypatch.setattr(
        "kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "nowhere")
    )

    code, _, err = run_main(serve_argv(), capsys)

    assert code == 2
    assert_one_line_naming(err, "kubeconfig")


def test_every_setting_has_a_flag_on_serve(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    help_text = capsys.readouterr().out

    for name in Settings.model_fields:
        assert flag(name) in help_text


def _serve_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "100000")  # one line per flag: nothing wrapped mid-value
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    return capsys.readouterr().out


def test_help_shows_each_settings_default_and_env_var(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = " ".join(_serve_help(capsys, monkeypatch).split())

    for entry in catalog.entries():
        shown = f"{entry.description} Default: {entry.default}. Env: {entry.env}."
        if entry.default == "required":
            shown = f"{entry.description} Env: {entry.env}."
        assert shown in text


def test_help_states_defaults_as_they_are_typed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _serve_help(capsys, monkeypatch)

    assert "Default: 0. Env: NODE_DNS_TCP_MAX_QUERIES." in text
    assert "Default: true. Env: NODE_DNS_FAIL_OPEN." in text
    assert "Default: annotation. Env: NODE_DNS_IP_SOURCES." in text
    assert "Default: unset. Env: NODE_DNS_RRL_NXDOMAINS_PER_SECOND." in text
    assert "Required. Env: NODE_DNS_ZONE." in text


def test_help_groups_settings_by_the_part_they_steer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _serve_help(capsys, monkeypatch)

    for group in GROUPS:
        assert f"\n{group.title}:\n" in text


def test_flag_wins_over_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_DNS_RECORD_TTL", "99")

    settings = cli.load_settings({**REQUIRED, "record_ttl": "7"})

    assert settings.record_ttl == 7


def test_env_var_used_when_no_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_DNS_RECORD_TTL", "99")

    settings = cli.load_settings({**REQUIRED, "record_ttl": None})

    assert settings.record_ttl == 99


def test_version_command_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["version"], capsys)

    assert code == 0
    assert out.strip() == f"node-dns {__version__}"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main([], capsys)

    assert code == 2
    assert "serve" in out


def test_an_import_error_while_serving_surfaces_instead_of_restarting_the_server() -> None:
    """Only importing uvloop may fall back to asyncio; a server that fails stays failed."""
    calls: list[str] = []

    async def serve(_: Settings) -> int:
        calls.append("serve")
        raise ImportError("No module named 'something_loaded_late'")

    settings = Settings(**REQUIRED)

    with pytest.raises(ImportError, match="something_loaded_late"):
        cli.run(settings, serve=serve)

    assert calls == ["serve"]


def test_the_server_runs_on_uvloop_when_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")

    assert cli.event_loop_runner() is uvloop.run


def test_without_uvloop_the_server_runs_on_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # an import of it raises ImportError

    assert cli.event_loop_runner() is asyncio.run
