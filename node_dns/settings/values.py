"""Value types several setting groups share: DNS names and labels, annotation keys, addresses, lists.

Each is a pure parser (no I/O): it turns what a flag or an env var carries into the value the
program uses, or raises ``ValueError`` with the rule it broke. The error line that names the
setting is added by :mod:`node_dns.settings.errors`. The parsers the node agent shares live in
:mod:`node_dns.settings.spec` (no pydantic there) and are re-exported here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from node_dns import model
from node_dns.settings.spec import annotation_key, ip_text, networks, split_list

__all__ = [
    "AnnotationKey",
    "DnsLabel",
    "DnsName",
    "IpText",
    "annotation_key",
    "dns_label",
    "dns_name",
    "ip_text",
    "networks",
    "split_list",
]


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


DnsName = Annotated[str, AfterValidator(dns_name)]
DnsLabel = Annotated[str, AfterValidator(dns_label)]
AnnotationKey = Annotated[str, AfterValidator(annotation_key)]
IpText = Annotated[str, AfterValidator(ip_text)]
