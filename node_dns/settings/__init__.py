"""The one settings model: command-line flags, ``NODE_DNS_*`` environment variables and Helm values.

Every setting has one name. The flag is ``--name-with-dashes``, the environment variable is
``NODE_DNS_NAME_WITH_UNDERSCORES``, the attribute is ``settings.name_with_underscores`` and the
Helm value is ``config.<camelCase>`` unless the field names another (see
:func:`node_dns.settings.group.chart`). Operators grep for those names, so the model stays flat
to its users; in the code it is cut into groups, one module each, that :class:`Settings`
inherits: adding a capability's settings means adding a group module and listing it below.

Validation is pure (no files, no environment beyond the variables themselves, no randomness)
and happens before anything binds a socket or talks to the apiserver; every failure is one line
naming the setting (:func:`describe_error`). Defaults decided by the machine the process runs on
are filled in at startup by :mod:`node_dns.settings.startup`.
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
from node_dns.settings.transfers import TransferSettings
from node_dns.settings.zone import NameServer, ZoneSettings

__all__ = ["GROUPS", "Group", "NameServer", "Settings", "describe_error", "field_names"]


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
