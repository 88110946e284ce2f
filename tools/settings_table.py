"""Write the settings table into README.md between its markers, from the settings model itself.

`python tools/settings_table.py` rewrites README.md; `--check` exits 1 if README is stale (a
unit test runs that, so a new setting cannot ship undocumented). One table per settings group,
in the order of node_dns.settings.GROUPS, then the node agent's own group (`node-dns agent` also
reads the Kubernetes access and Logging settings).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from node_dns.settings import catalog

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(entry: catalog.Entry) -> str:
    if entry.default == "required":
        return "**required**"
    if entry.default in ("unset", "empty"):
        return entry.default
    return f"`{_cell(entry.default)}`"


def _helm(entry: catalog.Entry) -> str:
    return f"`{entry.chart}`" if entry.chart else "—"


def _agent_entries() -> list[catalog.Entry]:
    """The agent's own group (it shares Kubernetes access and Logging with the controller)."""
    return catalog.agent_by_group()[0][1]


def table() -> str:
    parts = []
    every = catalog.entries() + _agent_entries()
    for title, entries in itertools.groupby(every, key=lambda entry: entry.group):
        rows = [
            f"**{title}**",
            "",
            "| flag | env var | Helm value | default | meaning |",
            "|---|---|---|---|---|",
        ]
        for entry in entries:
            cells = [
                f"`{entry.flag}`",
                f"`{entry.env}`",
                _helm(entry),
                _default(entry),
                _cell(entry.description),
            ]
            rows.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def render(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    text = README.read_text()
    fresh = render(text)
    if "--check" in sys.argv:
        if fresh != text:
            print("README.md settings table is stale: run `python tools/settings_table.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
