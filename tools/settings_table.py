"""Write the settings table into README.md between its markers, from the settings model itself.

`python tools/settings_table.py` rewrites README.md; `--check` exits 1 if README is stale (a
unit test runs that, so a new setting cannot ship undocumented).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from node_dns.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def table() -> str:
    rows = ["| flag | env var | default | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        if info.default is PydanticUndefined and info.default_factory is None:
            default = "**required**"
        elif info.default_factory is not None:
            default = f"`{info.default_factory()!r}`"  # type: ignore[call-arg]
        else:
            default = f"`{info.default!r}`" if info.default is not None else "unset"
        meaning = (info.description or "").replace("|", "\\|")
        flag = "--" + name.replace("_", "-")
        rows.append(f"| `{flag}` | `NODE_DNS_{name.upper()}` | {default} | {meaning} |")
    return "\n".join(rows)


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
