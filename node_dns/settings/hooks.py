"""Render hooks settings: where the hooks file is. The hooks themselves live in that file."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group, chart


class HookSettings(Group):
    """Render hooks: templates rendered from what node-dns serves into files, and a command run
    after each change (dnsdist backends, HAProxy servers, nginx upstreams). The file is checked
    at startup: a template that does not compile or an output directory that cannot be written
    exits 2 naming the hook (README, "Render hooks")."""

    title = "Render hooks"

    hooks_file: str | None = Field(
        None,
        description="YAML file listing the render hooks (README, Render hooks). Unset: no hooks.",
        json_schema_extra=chart(None),  # the chart sets it when hooks.hooks lists any
    )
