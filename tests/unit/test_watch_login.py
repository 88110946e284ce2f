"""kopf logs in through the one credentials loader: the same fields, read again at each login
(kopf asks after a 401), the last good credentials kept when the files cannot be read."""

from __future__ import annotations

from pathlib import Path

import yaml

from node_dns import kube
from node_dns.sources import watch

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_kopf_gets_every_credential_field() -> None:
    credentials = kube.Credentials(
        server="https://h:6443",
        ca_data=PEM,
        insecure=True,
        scheme="Bearer",
        token="t",
        certificate_data="cert",
        private_key_data="key",
        default_namespace="ns",
    )

    info = watch.connection_info(credentials)

    assert (info.server, info.ca_data, info.insecure, info.scheme, info.token) == (
        "https://h:6443",
        PEM,
        True,
        "Bearer",
        "t",
    )
    assert (info.certificate_data, info.private_key_data, info.default_namespace) == ("cert", "key", "ns")


async def test_each_login_reads_again_and_keeps_the_last_good_credentials(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": "https://h"}}],
                "users": [{"name": "u", "user": {"tokenFile": str(token)}}],
            }
        )
    )
    login = watch.login(kube.CredentialsLoader(str(path)))

    first = await login()
    token.write_text("rotated")
    second = await login()
    token.unlink()
    third = await login()

    assert [first.token, second.token, third.token] == ["first", "rotated", "rotated"]
