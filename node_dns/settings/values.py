"""Value types several setting groups share: DNS names and labels, annotation keys, addresses, lists.

Each is a pure parser (no I/O): it turns what a flag or an env var carries into the value the
program uses, or raises ``ValueError`` with the rule it broke. The error line that names the
setting is added by :mod:`node_dns.settings.errors`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator

from node_dns import model

_ANNOTATION_KEY = re.compile(
    r"^(?:(?=.{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def dns_name(value: str) -> str:
    """Lower-case, strip the trailing dot, and check label syntax (LDH, 1-63 chars, <= 253 total)."""
    name = value.strip().rstrip(".").lower()
    if not name:
        raise ValueError("must be a DNS name, got an empty value")
    if len(name) > 253:
        raise ValueError("must be at most 253 characters")
    for label in name.split("."):
        if not model.is_dns_label(label):
            raise ValueError(f"label {label!r} is not a valid DNS label (a-z, 0-9, '-', 1-63 chars)")
    return name


def dns_label(value: str) -> str:
    """One DNS label (a namespace, an area), lower-cased."""
    label = value.strip().lower()
    if not model.is_dns_label(label):
        raise ValueError(f"{value!r} is not a DNS label (a-z, 0-9, '-', 1-63 chars)")
    return label


def annotation_key(value: str) -> str:
    key = value.strip()
    if not _ANNOTATION_KEY.match(key):
        raise ValueError(f"{value!r} is not a valid Kubernetes annotation key (prefix/name)")
    return key


def ip_text(value: str) -> str:
    """An IPv4 or IPv6 address to bind to, kept as the text given."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    return value


def split_list(value: Any) -> Any:
    """Accept a list, or a comma/whitespace separated string (flags and env vars)."""
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value) if part]
    return value


DnsName = Annotated[str, AfterValidator(dns_name)]
DnsLabel = Annotated[str, AfterValidator(dns_label)]
AnnotationKey = Annotated[str, AfterValidator(annotation_key)]
IpText = Annotated[str, AfterValidator(ip_text)]


def networks(entries: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Each entry as a normalised IPv4 or IPv6 network (host bits allowed), or a ValueError
    naming the first entry that is not one."""
    result = []
    for entry in entries:
        try:
            result.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IPv4 or IPv6 network (CIDR)") from None
    return tuple(result)
