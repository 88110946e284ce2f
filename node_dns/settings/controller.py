"""The controller's settings model (``node-dns serve`` and ``node-dns zone``): every group as one
flat, frozen pydantic model. Imported through :mod:`node_dns.settings` (``from node_dns.settings
import Settings``); a module of its own so that the package's pydantic-free modules (the node
agent's settings) can be imported without building it.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from node_dns.settings import errors
from node_dns.settings.dns import DnsSettings
from node_dns.settings.group import Group
from node_dns.settings.hooks import HookSettings
from node_dns.settings.http import HttpSettings
from node_dns.settings.kubernetes import KubernetesSettings
from node_dns.settings.leader import LeaderSettings
from node_dns.settings.logs import LogSettings
from node_dns.settings.nodes import NodeSettings
from node_dns.settings.policy import PolicySettings
from node_dns.settings.probes import ProbeSettings
from node_dns.settings.rrl import RrlSettings
from node_dns.settings.services import ServiceSettings
from node_dns.settings.stalls import StallSettings
from node_dns.settings.transfers import TransferSettings
from node_dns.settings.zone import ZoneSettings


class Settings(
    ZoneSettings,
    NodeSettings,
    PolicySettings,
    ProbeSettings,
    ServiceSettings,
    DnsSettings,
    RrlSettings,
    HttpSettings,
    KubernetesSettings,
    LeaderSettings,
    TransferSettings,
    HookSettings,
    StallSettings,
    LogSettings,
    BaseSettings,
):
    """All of node-dns' configuration: every group below, as one flat, frozen model."""

    model_config = errors.MODEL_CONFIG


GROUPS: tuple[type[Group], ...] = tuple(
    base for base in Settings.__mro__ if issubclass(base, Group) and base not in (Group, Settings)
)
"""The groups in the order they are documented (``--help``, README): the order of the bases above."""


def describe_error(error: ValidationError) -> str:
    """One line per failure, naming the setting as the user spells it (flag and env var)."""
    return errors.describe_error(error, Settings.model_fields)


def field_names() -> list[str]:
    return list(Settings.model_fields)
