"""What a settings group is: a pydantic model holding the fields of one part of the system.

:class:`node_dns.settings.Settings` inherits every group, so each field is still one flat name
(``--record-ttl``, ``NODE_DNS_RECORD_TTL``, ``settings.record_ttl``). A group's docstring is
its documentation in ``--help`` and in the README; ``title`` heads it there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel


class Group(BaseModel):
    """Base of every settings group; carries no fields itself."""

    title: ClassVar[str] = ""
    """Heading of the group in ``--help`` and in the README settings table."""


def chart(path: str | None) -> dict[str, Any]:
    """``json_schema_extra`` naming the Helm value that sets a field.

    Without it a field is ``config.<camelCase>`` in charts/node-dns/values.yaml; ``None`` says
    the chart sets it another way (the downward API) or not at all (a kubeconfig path).
    """
    return {"chart": path}
