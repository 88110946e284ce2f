"""What every apiserver client here shares on the wire: patch content types, body decoding,
one-line error texts. Imports nothing heavy (the node agent's lean client uses it too)."""

from __future__ import annotations

import json
from typing import Any, Literal

PatchType = Literal["merge", "strategic", "json", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


def decode(raw: bytes) -> Any:
    """JSON if it is JSON, else the start of the text (proxies answer errors in HTML)."""
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:300].decode("utf-8", "replace")


def brief(error: BaseException) -> str:
    """An exception as one short line: its class and its message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__
