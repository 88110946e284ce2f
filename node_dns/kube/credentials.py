"""Credentials for the apiserver: plain data, so every consumer logs in with the same values.

:class:`Credentials` is what a client needs to authenticate: the server, how to trust it, and
who we are (a bearer token, a client certificate, or basic auth). The kopf watch (through
:mod:`node_dns.sources`) and :class:`node_dns.kube.client.Client` both use it.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where the apiserver is and how to authenticate to it; PEM texts, not base64."""

    server: str
    ca_path: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    scheme: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    certificate_path: str | None = None
    certificate_data: str | None = None
    private_key_path: str | None = None
    private_key_data: str | None = None
    default_namespace: str | None = None

    def headers(self) -> dict[str, str]:
        """The Authorization header, if any (client certificates authenticate in TLS)."""
        if self.token:
            return {"Authorization": f"{self.scheme or 'Bearer'} {self.token}"}
        if self.username and self.password:
            pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {pair}"}
        return {}

    def same_tls(self, other: Credentials | None) -> bool:
        """Whether a connection made with ``other`` may be reused (only the token changed)."""
        if other is None:
            return False
        tls = [f.name for f in fields(self) if f.name not in ("scheme", "token", "username", "password")]
        return all(getattr(self, name) == getattr(other, name) for name in tls)

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS for an https server (None for http://): its CA, our client certificate if any."""
        if not self.server.startswith("https://"):
            return None
        context = ssl.create_default_context(cafile=self.ca_path, cadata=self.ca_data)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.certificate_path or self.certificate_data:
            _load_client_certificate(context, self)
        return context


def _load_client_certificate(context: ssl.SSLContext, credentials: Credentials) -> None:
    """``ssl`` loads certificates from files only: data goes through a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="node-dns-tls-") as folder:
        cert, key = credentials.certificate_path, credentials.private_key_path
        if credentials.certificate_data:
            cert = _private_file(Path(folder) / "tls.crt", credentials.certificate_data)
        if credentials.private_key_data:
            key = _private_file(Path(folder) / "tls.key", credentials.private_key_data)
        context.load_cert_chain(str(cert), str(key) if key else None)


def _private_file(path: Path, text: str) -> str:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return str(path)
