"""Defaults that depend on the machine, filled in once at startup (validators do no I/O).

The Lease namespace defaults to the pod's namespace (read from the service account mount) and
the holder identity to ``$POD_NAME``, else ``<hostname>_<random>``. A value found this way
passes the same rule as a value given by flag, and a bad one is reported the same way: one line
naming the setting, exit 2.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from node_dns.settings import Settings, leader
from node_dns.settings.errors import SettingError

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def resolve(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE,
    hostname: Callable[[], str] = socket.gethostname,
    token: Callable[[], str] = lambda: secrets.token_hex(4),
) -> Settings:
    """``settings`` with the Lease namespace and holder identity set; raises :class:`SettingError`."""
    environ = os.environ if environ is None else environ
    update: dict[str, str] = {}
    if settings.leader_lease_namespace is None:
        namespace = _read(namespace_file) or "default"
        update["leader_lease_namespace"] = _checked(
            "leader_lease_namespace", leader.namespace_name, namespace, f"read from {namespace_file}"
        )
    if settings.leader_identity is None:
        pod = environ.get("POD_NAME")
        drawn = pod or f"{hostname()}_{token()}"
        update["leader_identity"] = _checked(
            "leader_identity", leader.identity, drawn, "from $POD_NAME" if pod else "from the host name"
        )
    if settings.probe_file is not None:
        _check_probe_file(settings)
    return settings.model_copy(update=update) if update else settings


def _check_probe_file(settings: Settings) -> None:
    """Read and parse the per-area probe file now, so a bad one stops the start (exit 2)."""
    from node_dns.settings import probe_spec as probe_config

    try:
        probe_config.plan(settings)
    except OSError as error:
        raise SettingError("probe_file", f"cannot read {settings.probe_file}: {error.strerror}") from None
    except probe_config.SpecError as error:
        raise SettingError("probe_file", str(error)) from None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _checked(name: str, rule: Callable[[str], str], value: str, origin: str) -> str:
    try:
        return rule(value)
    except ValueError as error:
        raise SettingError(name, f"{error} ({origin})") from None
