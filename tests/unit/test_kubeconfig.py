"""Reading credentials without kubernetes-asyncio: kubeconfig merging and resolution as kubectl
does it, the pod's service account (re-read, since projected tokens rotate), one-line errors, and
the one refresh policy (read again when stale or rejected, keep the last good credentials)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_dns import kube

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfig(
    path: Path,
    *,
    current: str | None = "c",
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    name: str = "k",
) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster or {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": name, "user": "u", "namespace": "ns"}}],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


async def load(spec: str | Path) -> Any:
    return await kube.CredentialsLoader(str(spec)).load()


async def test_token_server_and_ca_data_are_read(tmp_path: Path) -> None:
    ca = base64.b64encode(PEM.encode()).decode()
    path = kubeconfig(
        tmp_path / "config", cluster={"server": "https://h:6443/", "certificate-authority-data": ca}
    )

    info = await load(path)

    assert (info.server, info.token, info.scheme, info.ca_data) == ("https://h:6443", "t", "Bearer", PEM)
    assert info.default_namespace == "ns"


async def test_files_are_named_relative_to_their_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / "pki" / name).write_text(PEM)
    (tmp_path / "token").write_text("from-file\n")
    path = kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://h", "certificate-authority": "pki/ca.crt"},
        user={"client-certificate": "pki/client.crt", "client-key": "pki/client.key", "tokenFile": "token"},
    )

    info = await load(path)

    assert info.ca_path == str(tmp_path / "pki" / "ca.crt")
    assert info.certificate_path == str(tmp_path / "pki" / "client.crt")
    assert info.private_key_path == str(tmp_path / "pki" / "client.key")
    assert info.token == "from-file"


async def test_merged_files_take_the_first_current_context_and_the_first_definition(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "a", cluster={"server": "https://first"})
    second = kubeconfig(tmp_path / "b", cluster={"server": "https://second"})
    no_context = kubeconfig(tmp_path / "c", current=None, cluster={"server": "https://third"})

    assert (await load(f"{first}:{second}")).server == "https://first"
    assert (await load(f"{second}:{first}")).server == "https://second"
    # the context comes from the only file that sets one, the cluster from the first to define it
    assert (await load(f"{no_context}:{first}")).server == "https://third"


async def test_a_missing_file_in_the_list_is_skipped_when_another_exists(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")

    info = await load(f"{tmp_path / 'absent'}:{path}")

    assert info.token == "t"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("garbage: [", "not YAML"),
        ("- a\n- b\n", "not a mapping"),
        ("apiVersion: v1\nkind: Config\n", "no current-context"),
        ("current-context: nope\ncontexts: []\n", "'nope' is not defined"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n", "cluster 'x'"),
        ("current-context: c\ncontexts: {c: 1}\n", "contexts is not a list"),
    ],
    ids=["not-yaml", "not-mapping", "no-context", "unknown-context", "unknown-cluster", "contexts-not-list"],
)
async def test_unusable_kubeconfigs_give_one_line_naming_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "config"
    path.write_text(content)

    with pytest.raises(kube.KubeconfigError, match=message) as caught:
        await load(path)

    assert "\n" not in str(caught.value)


async def test_a_named_file_that_is_missing_is_named_in_the_error(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config", cluster={"server": "https://h", "certificate-authority": "gone.crt"}
    )

    with pytest.raises(kube.KubeconfigError, match=r"gone\.crt"):
        await load(path)


async def test_certificate_data_that_is_not_base64_is_an_error(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config", cluster={"server": "https://h", "certificate-authority-data": "%%%"}
    )

    with pytest.raises(kube.KubeconfigError, match="certificate-authority-data"):
        await load(path)


async def test_no_kubeconfig_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(kube.KubeconfigError, match=r"no kubeconfig file at .*absent"):
        await load(tmp_path / "absent")


async def test_an_exec_plugin_is_left_to_the_client_library(tmp_path: Path) -> None:
    credential = (
        '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"x1"}}'
    )
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": ["-c", f"print('{credential}')"],
        "interactiveMode": "Never",
    }
    path = kubeconfig(tmp_path / "config", user={"exec": plugin})
    credentials = kube.CredentialsLoader(str(path))

    info = await credentials.load()

    assert credentials.via_library is True
    assert info.token == "x1"


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text("first")
    (folder / "ca.crt").write_text(PEM)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return folder


def in_pod(folder: Path, **options: Any) -> kube.CredentialsLoader:
    return kube.CredentialsLoader(None, service_account=folder, **options)


async def test_in_a_pod_the_service_account_is_used_and_its_token_read_again(service_account: Path) -> None:
    credentials = in_pod(service_account)

    first = await credentials.load()
    (service_account / "token").write_text("rotated")
    second = await credentials.load()

    assert (first.server, first.token, first.ca_path) == (
        "https://10.96.0.1:443",
        "first",
        str(service_account / "ca.crt"),
    )
    assert second.token == "rotated"


async def test_an_ipv6_service_host_is_bracketed(
    service_account: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")

    info = await in_pod(service_account).load()

    assert info.server == "https://[fd00::1]:443"


async def test_a_pod_without_its_token_gets_an_error_naming_the_file(service_account: Path) -> None:
    (service_account / "token").unlink()

    with pytest.raises(kube.KubeconfigError, match="automountServiceAccountToken"):
        await in_pod(service_account).load()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_credentials_stay_current_until_they_are_stale_then_are_read_again(
    service_account: Path,
) -> None:
    clock = Clock()
    loader = in_pod(service_account, reread_after=60.0, clock=clock)
    await loader.load()
    (service_account / "token").write_text("rotated")

    clock.now += 59.0
    before = await loader.current()
    clock.now += 2.0
    after = await loader.current()

    assert (before.token, after.token) == ("first", "rotated")


async def test_a_failed_read_keeps_the_last_good_credentials(
    service_account: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loader = in_pod(service_account)
    await loader.load()
    (service_account / "token").unlink()

    kept = await loader.refresh()

    assert kept.token == "first"
    assert "keeping the current credentials" in caplog.text


async def test_a_failed_first_read_is_an_error_even_through_the_refresh_policy(service_account: Path) -> None:
    (service_account / "token").unlink()

    with pytest.raises(kube.KubeconfigError, match="automountServiceAccountToken"):
        await in_pod(service_account).refresh()


async def test_a_failed_stale_read_is_not_retried_on_every_request(service_account: Path) -> None:
    clock = Clock()
    loader = in_pod(service_account, reread_after=60.0, clock=clock)
    await loader.load()
    (service_account / "token").unlink()
    clock.now += 61.0
    await loader.current()  # fails, keeps "first"
    (service_account / "token").write_text("back")

    clock.now += 1.0
    soon = await loader.current()
    clock.now += 60.0
    later = await loader.current()

    assert (soon.token, later.token) == ("first", "back")


async def test_the_pods_namespace_is_the_default_namespace(service_account: Path) -> None:
    (service_account / "namespace").write_text("node-dns\n")

    info = await in_pod(service_account).load()

    assert info.default_namespace == "node-dns"


def test_only_a_token_change_keeps_the_tls_connection() -> None:
    base = kube.Credentials(server="https://h", ca_data=PEM, token="a")

    assert base.same_tls(kube.Credentials(server="https://h", ca_data=PEM, token="b"))
    assert not base.same_tls(kube.Credentials(server="https://h", ca_data=PEM + " ", token="a"))
    assert not base.same_tls(None)


def test_the_authorization_header_carries_the_token_or_basic_auth() -> None:
    assert kube.Credentials(server="https://h", scheme="Bearer", token="t").headers() == {
        "Authorization": "Bearer t"
    }
    assert kube.Credentials(server="https://h", username="u", password="p").headers() == {
        "Authorization": "Basic dTpw"
    }
    assert kube.Credentials(server="https://h").headers() == {}
