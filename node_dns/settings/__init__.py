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

The model lives in :mod:`node_dns.settings.controller` and loads on first use of a name below:
the node agent reads its own settings (:mod:`node_dns.settings.agent`, no pydantic) from this
package without building the controller's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node_dns.settings.controller import GROUPS, Settings, describe_error, field_names
    from node_dns.settings.group import Group
    from node_dns.settings.zone import NameServer

__all__ = ["GROUPS", "Group", "NameServer", "Settings", "describe_error", "field_names"]

_FROM_CONTROLLER = ("GROUPS", "Settings", "describe_error", "field_names")


def __getattr__(name: str) -> Any:
    if name in _FROM_CONTROLLER:
        from node_dns.settings import controller

        return getattr(controller, name)
    if name == "Group":
        from node_dns.settings.group import Group

        return Group
    if name == "NameServer":
        from node_dns.settings.zone import NameServer

        return NameServer
    raise AttributeError(f"module 'node_dns.settings' has no attribute {name!r}")
