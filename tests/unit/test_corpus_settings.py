"""Every setting, every kind of invalid value: exit code 2, one line naming the setting, no traceback.

Table-driven over ``Settings.model_fields``: invalid values are derived from each field's type
and bounds (not a number, below the minimum, above the maximum, NaN, a bool that is not one,
a choice that does not exist) and added to by hand where the type is a plain string with its
own rules. A new setting with no derivable invalid value makes this module fail until it is
listed in ``INVALID`` (or in ``ANY_STRING`` with the reason it cannot be invalid).

Each value goes in through the flag and through the ``NODE_DNS_*`` variable.
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
import pytest
from pydantic.fields import FieldInfo

from node_dns import cli
from node_dns.settings import Settings

BASE = {
    "zone": "lb.example.net",
    "nameservers": "ns1.lb.example.net=192.0.2.53;ns2.example.org",
    "soa_email": "hostmaster@example.net",
}

INVALID: dict[str, list[str]] = {
    "probe": ["udp:53", "tcp:0", "tcp:70000", "http://host:80/", "dns:53", "dns:53:bad..name", "https://:x/"],
    "probe_http_status": ["", "600", "299-200", "abc", "2x"],
    "probe_dns_rcode": ["", "NOPE", "16", "-1"],
    "probe_sni": ["", "bad_name.example", "-x"],
    "probe_verdicts_name": ["", "Bad Name", "-x"],
    "zone": ["", ".", "-bad.example", "a..example", "x" * 64 + ".example", "exa mple.net", "ex_ample.net"],
    "nameservers": ["", ";", "ns1.lb.example.net", "ns.example.org=not-an-ip", "bad_name.example", "-x"],
    "soa_email": ["", "no-at-sign", "a@b@example.net", "a b@example.net", "a@-bad-", "@example.net"],
    "areas_annotation": ["", "bad key!", "/name", "a/b/c", "x" * 64],
    "ips_annotation": ["", "bad key!", "/name", "Pre.Fix/name"],
    "discovered_annotation": ["", "bad key!", "/name"],
    "node_selector": ["a b", "a in (b c)", "=x", "a=b,", "!", "Bad.Prefix/x=y"],
    "service_annotation": ["", "bad key!"],
    "dns_address": ["", "localhost", "300.1.1.1", "::g", "10.0.0.0/8"],
    "http_address": ["", "localhost", "1.2.3"],
    "kubeconfig": ["/nonexistent/kubeconfig", "{garbage}"],
    "rrl_exempt": ["10.0.0.0/33", "bogus", "10.0.0.0/8,::/129"],
    "static_records": ["noequals", "area=not-an-ip", "-bad-=192.0.2.1", "Bad_Label=192.0.2.1"],
    "service_namespaces": ["Bad_NS", "-x-"],
    "leader_lease_name": ["-bad-", "a..b", ""],
    "leader_lease_namespace": ["Bad_NS", "-x-"],
    "tsig_key": ["xfr", "hmac-sha999:xfr:AAAA", "xfr:not base64!", "xfr:AAAA;xfr:AAAA", "a:b:c:d", ":AAAA"],
    "transfer_allow": ["10.0.0.0/33", "bogus", "key=", "10.0.0.0/8+10.1.0.0/16", "key=a+key=b"],
    "notify": ["host.example:53", "192.0.2.1:99999", "[2001:db8::1", "192.0.2.1:53+kee=x", "1.2.3.4:x"],
}
"""Hand-written invalid values, in addition to what the field's type gives."""

ANY_STRING: dict[str, str] = {
    "probe_ca_file": "a path; an unreadable one fails the probes that use it, with the reason",
    "probe_file": "a path; it is read and checked at startup (node_dns.settings.startup)",
    "tsig_keys_file": "a path: the file is read at start; a bad one exits 2 there (test_xfr_settings)",
    "leader_identity": "any string names this replica's holder identity",
    "hooks_file": "a path: the file is read and checked at startup, exit 2 naming the hook",
}
"""Settings that accept every string, so have no invalid value at validation time."""


def _unwrap(annotation: Any) -> Any:
    """``int | None`` -> ``int``."""
    if get_origin(annotation) in (types.UnionType, typing.Union):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _bounds(info: FieldInfo, kind: type) -> list[str]:
    values = []
    step = 1 if kind is int else 0.5
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge) and isinstance(item.ge, int | float):
            values.append(str(item.ge - step))
        if isinstance(item, annotated_types.Gt) and isinstance(item.gt, int | float):
            values.append(str(item.gt))
        if isinstance(item, annotated_types.Le) and isinstance(item.le, int | float):
            values.append(str(item.le + step))
        if isinstance(item, annotated_types.Lt) and isinstance(item.lt, int | float):
            values.append(str(item.lt))
    return values


def derived(name: str, info: FieldInfo) -> list[str]:
    kind = _unwrap(info.annotation)
    values: list[str] = []
    if kind in (int, float):
        values += ["abc", "", "1e400x", *_bounds(info, kind)]
        if kind is int:
            values.append("1.5")
        if kind is float and any(getattr(m, "allow_inf_nan", True) is False for m in info.metadata):
            values += ["nan", "inf"]
    elif kind is bool:
        values += ["maybe", "2", "yes please"]
    elif get_origin(kind) is Literal:
        values += ["not-a-choice", ""]
    elif get_origin(kind) in (tuple, list) and get_args(kind) and get_origin(get_args(kind)[0]) is Literal:
        values += ["not-a-choice", f"{get_args(get_args(kind)[0])[0]},not-a-choice"]
    return values


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name, info in Settings.model_fields.items():
        values = derived(name, info) + INVALID.get(name, [])
        cases += [(name, value) for value in dict.fromkeys(values)]
    return cases


CASES = _cases()


def test_every_setting_has_invalid_values_or_says_why_not() -> None:
    covered = {name for name, _ in CASES}
    missing = set(Settings.model_fields) - covered - set(ANY_STRING)
    assert not missing, f"add invalid values for {sorted(missing)} to INVALID in {__file__}"
    assert not set(ANY_STRING) & covered, "a setting listed as taking any string has invalid values"
    assert not set(INVALID) - set(Settings.model_fields), "INVALID lists settings that no longer exist"


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Never start a server or touch logging; a valid kubeconfig so only the value under test fails."""

    def accepted(settings: Settings) -> int:
        raise AssertionError(f"accepted: {settings!r}")

    monkeypatch.setattr(cli, "run", accepted)
    monkeypatch.setattr(cli.logs, "setup", lambda *a: None)
    for key in list(os.environ):
        if key.startswith("NODE_DNS_"):
            monkeypatch.delenv(key)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    (tmp_path / "garbage").write_text("garbage: [\n")
    return kubeconfig


def _value(value: str, tmp: Path) -> str:
    return str(tmp / "garbage") if value == "{garbage}" else value


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_argv(kubeconfig: Path, skip: str) -> list[str]:
    argv = ["serve", f"--kubeconfig={kubeconfig}"] if skip != "kubeconfig" else ["serve"]
    return argv + [f"{_flag(k)}={v}" for k, v in BASE.items() if k != skip]


def _assert_one_line_naming(name: str, code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("node-dns: invalid setting"), line
    assert _flag(name) in line or f"NODE_DNS_{name.upper()}" in line or f"{name}:" in line, line


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v[:20]!r}" for n, v in CASES])
def test_invalid_value_by_env_var(
    name: str, value: str, no_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(f"NODE_DNS_{name.upper()}", _value(value, no_run.parent))
    code = cli.main(_base_argv(no_run, skip=name))
    _assert_one_line_naming(name, code, capsys.readouterr().err)


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v[:20]!r}" for n, v in CASES])
def test_invalid_value_by_flag(
    name: str, value: str, no_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*_base_argv(no_run, skip=name), f"{_flag(name)}={_value(value, no_run.parent)}"]
    if _unwrap(Settings.model_fields[name].annotation) is bool:
        # --flag/--no-flag take no value: argparse refuses with its usage line and exit code 2
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        err = capsys.readouterr().err
        assert exited.value.code == 2
        assert _flag(name) in err and "Traceback" not in err
        return
    code = cli.main(argv)
    _assert_one_line_naming(name, code, capsys.readouterr().err)


@pytest.mark.parametrize("name", sorted(k for k in BASE))
def test_missing_required_setting(name: str, no_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(_base_argv(no_run, skip=name))
    err = capsys.readouterr().err
    _assert_one_line_naming(name, code, err)
    assert "is required" in err


def test_several_invalid_settings_are_all_named_on_one_line(
    no_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main([*_base_argv(no_run, skip=""), "--record-ttl=-1", "--rrl-slip=99", "--dns-port=x"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    for flag in ("--record-ttl", "--rrl-slip", "--dns-port"):
        assert flag in err


def test_derivation_covers_numbers_and_bounds() -> None:
    """Guard the generator itself: a bounded float gets both sides and NaN."""
    cases = dict.fromkeys(v for n, v in CASES if n == "fail_open_min_fraction")
    assert {"-0.5", "1.5", "nan", "inf", "abc"} <= set(cases)
