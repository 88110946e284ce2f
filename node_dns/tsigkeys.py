"""TSIG keys (RFC 8945 shared secrets): parsed from settings, used by signing and verifying.

Imports nothing from node_dns: the settings validate keys with these parsers, and the answer
layer signs with the keys they make.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

ALGORITHMS: dict[str, str] = {
    "hmac-md5.sig-alg.reg.int": "md5",
    "hmac-sha1": "sha1",
    "hmac-sha224": "sha224",
    "hmac-sha256": "sha256",
    "hmac-sha384": "sha384",
    "hmac-sha512": "sha512",
}
"""Algorithm names (as on the wire, lower case) to hashlib names."""
ALIASES = {"hmac-md5": "hmac-md5.sig-alg.reg.int"}


class KeyError_(ValueError):
    """A key definition that cannot be used; the message names the key and the problem."""


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    """Lower case, without the trailing dot."""
    algorithm: str
    """Wire name of the algorithm, lower case (``hmac-sha256``)."""
    secret: bytes

    @property
    def wire_name(self) -> bytes:
        return to_wire(self.name)

    @property
    def wire_algorithm(self) -> bytes:
        return to_wire(self.algorithm)

    @property
    def mac_size(self) -> int:
        return hashlib.new(ALGORITHMS[self.algorithm]).digest_size


def to_wire(name: str) -> bytes:
    """Canonical (lower-case, uncompressed) wire form of a dotted name."""
    name = name.rstrip(".").lower()
    if not name:
        return b"\x00"
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise KeyError_(f"key name {name!r}: empty or over-long label")
        out.append(len(raw))
        out += raw
    return bytes(out) + b"\x00"


def make_key(name: str, algorithm: str, secret_b64: str) -> Key:
    """Validate one key; raises :class:`KeyError_` naming what is wrong."""
    name = name.strip().rstrip(".").lower()
    if not name:
        raise KeyError_("a TSIG key needs a name")
    algorithm = algorithm.strip().rstrip(".").lower()
    algorithm = ALIASES.get(algorithm, algorithm)
    if algorithm not in ALGORITHMS:
        raise KeyError_(f"key {name!r}: unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    try:
        secret = base64.b64decode(secret_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_(f"key {name!r}: the secret is not valid base64") from None
    if not secret:
        raise KeyError_(f"key {name!r}: the secret is empty")
    to_wire(name)
    return Key(name, algorithm, secret)


def parse_keys(text: str) -> list[Key]:
    """``[alg:]name:secret`` entries separated by ``;`` (kdig's ``-y`` form; hmac-sha256 by default)."""
    keys = []
    for entry in (part.strip() for part in text.split(";")):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) == 2:
            keys.append(make_key(parts[0], "hmac-sha256", parts[1]))
        elif len(parts) == 3:
            keys.append(make_key(parts[1], parts[0], parts[2]))
        else:
            raise KeyError_(f"{_redact(entry)!r} is not of the form [algorithm:]name:base64-secret")
    return _unique(keys)


_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*|#[^\n]*", re.S)
_KEY_CLAUSE = re.compile(r'key\s+"?([A-Za-z0-9._-]+)"?\s*\{(.*?)\}\s*;', re.S)
_ALGORITHM = re.compile(r'algorithm\s+"?([A-Za-z0-9._-]+)"?\s*;')
_SECRET = re.compile(r'secret\s+"([^"]*)"\s*;')


def parse_bind_keys(text: str) -> list[Key]:
    """BIND ``key "name" { algorithm hmac-sha256; secret "..."; };`` clauses (as tsig-keygen writes)."""
    text = _COMMENTS.sub("", text)
    keys = []
    for match in _KEY_CLAUSE.finditer(text):
        name, body = match.group(1), match.group(2)
        algorithm = _ALGORITHM.search(body)
        secret = _SECRET.search(body)
        if algorithm is None or secret is None:
            raise KeyError_(f"key {name!r}: needs both 'algorithm' and 'secret'")
        keys.append(make_key(name, algorithm.group(1), secret.group(1)))
    if not keys and text.strip():
        raise KeyError_('no `key "name" { algorithm ...; secret "..."; };` clause found')
    return _unique(keys)


def _unique(keys: list[Key]) -> list[Key]:
    seen: set[str] = set()
    for key in keys:
        if key.name in seen:
            raise KeyError_(f"key {key.name!r} is defined twice")
        seen.add(key.name)
    return keys


def _redact(entry: str) -> str:
    """Never echo a secret into an error message or a log."""
    return entry.rsplit(":", 1)[0] + ":..." if ":" in entry else "..."
