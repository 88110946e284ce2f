"""What to probe: one probe spec per area (or one for all), parsed from flags and a YAML file.

The grammar of reachability probes lives here, with the settings, because the settings check
``--probe`` and the probe file with it (node_dns.sources.probes runs what it describes).

Per-area probes come from one YAML file (``--probe-file``, a ConfigMap in the chart) rather than
from annotations: an area is only a word in node annotations, with no object of its own to carry
a probe, and one file read at startup gives every replica the same plan -- which replicas need,
since they exchange verdicts by probe key.

A spec never names a host: the target is always the node's own address, which is what makes a
probe say something about *that* address. Its ``key`` is a canonical text that identifies the
check (kind, port, path, expectations, timing); replicas exchange verdicts by ``(node, ip, key)``,
so two replicas with the same configuration agree on keys without coordination.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from node_dns.protocol import Rcode

if TYPE_CHECKING:
    from node_dns.settings import Settings

Kind = Literal["tcp", "http", "https", "dns"]

RCODES = {rcode.name: rcode.value for rcode in Rcode if rcode.value <= Rcode.REFUSED}
"""The response codes a DNS probe may expect (RFC 1035 §4.1.1)."""

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_HTTP = re.compile(r"^(https?)://:(\d+)(/[^\s]*)?$")


class SpecError(ValueError):
    """A probe that cannot be parsed; the message names the bad part."""


@dataclass(frozen=True, slots=True)
class Timing:
    """How often and how patiently: shared by every kind of probe."""

    interval: float = 2.0
    timeout: float = 1.0
    rise: int = 2
    fall: int = 2
    jitter: float = 1.0
    """Share of the interval over which targets are spread (1.0: the whole interval)."""

    def check(self) -> Timing:
        if self.interval <= 0:
            raise SpecError(f"interval must be positive, got {self.interval:g}")
        if not 0 < self.timeout <= self.interval:
            raise SpecError(f"timeout must be positive and at most the interval, got {self.timeout:g}")
        if self.rise < 1 or self.fall < 1:
            raise SpecError(f"rise and fall must be at least 1, got {self.rise} and {self.fall}")
        if not 0 <= self.jitter <= 1:
            raise SpecError(f"jitter must be between 0 and 1, got {self.jitter:g}")
        return self


@dataclass(frozen=True, slots=True)
class Probe:
    """One check of a node address.

    ``http``/``https``: GET ``path``, pass when the status is within ``status``. TLS certificates
    are verified against ``ca_file`` (or the system store) unless ``verify`` is off; ``sni`` is the
    name sent and verified (default: none, and then the certificate must carry the IP).
    ``dns``: ask ``name``/A over UDP, pass when the response code is ``rcode``.
    """

    kind: Kind
    port: int
    path: str = "/"
    status: tuple[int, int] = (200, 399)
    sni: str | None = None
    verify: bool = True
    ca_file: str | None = None
    name: str = ""
    rcode: int = 0
    timing: Timing = field(default_factory=Timing)

    @property
    def key(self) -> str:
        """Canonical text; equal keys mean the same check, so verdicts are shared by it."""
        t = self.timing
        tail = f" every={t.interval:g} timeout={t.timeout:g} rise={t.rise} fall={t.fall}"
        if self.kind == "tcp":
            return f"tcp:{self.port}" + tail
        if self.kind == "dns":
            return f"dns:{self.port}:{self.name} rcode={rcode_name(self.rcode)}" + tail
        text = f"{self.kind}://:{self.port}{self.path} status={self.status[0]}-{self.status[1]}"
        if self.kind == "https":
            text += f" sni={self.sni or '-'} verify={'on' if self.verify else 'off'}"
            if self.ca_file:
                text += f" ca={self.ca_file}"
        return text + tail

    @property
    def short(self) -> str:
        """The probe as written on the command line, for logs and /debug."""
        if self.kind == "tcp":
            return f"tcp:{self.port}"
        if self.kind == "dns":
            return f"dns:{self.port}:{self.name}"
        return f"{self.kind}://:{self.port}{self.path}"


def rcode_name(rcode: int) -> str:
    for name, number in RCODES.items():
        if number == rcode:
            return name
    return str(rcode)


def parse_rcode(value: str | int) -> int:
    if isinstance(value, int) or value.strip().isdigit():
        number = int(value)
        if not 0 <= number <= 15:
            raise SpecError(f"rcode {value!r} is out of range 0-15")
        return number
    found = RCODES.get(value.strip().upper())
    if found is None:
        raise SpecError(f"rcode {value!r} is not one of {', '.join(RCODES)} or a number")
    return found


def parse_status(value: str | int) -> tuple[int, int]:
    """``200``, ``200-299`` or ``2xx`` style ranges."""
    text = str(value).strip().lower()
    if re.fullmatch(r"[1-5]xx", text):
        low = int(text[0]) * 100
        return low, low + 99
    low_text, sep, high_text = text.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        raise SpecError(f"status {value!r} must look like 200, 200-299 or 2xx") from None
    if not 100 <= low <= high <= 599:
        raise SpecError(f"status range {value!r} must lie within 100-599, low before high")
    return low, high


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SpecError(f"probe {whole!r}: port {text!r} must be a number from 1 to 65535")
    return int(text)


def _dns_name(text: str, whole: str) -> str:
    name = text.strip().rstrip(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise SpecError(f"probe {whole!r}: {text!r} is not a DNS name")
    return name.lower()


def parse(text: str, base: Probe | None = None, timing: Timing | None = None) -> Probe:
    """``tcp:PORT``, ``http://:PORT/PATH``, ``https://:PORT/PATH`` or ``dns:PORT:NAME``.

    Options not carried by the text (status range, SNI, TLS verification, rcode, timing) come
    from ``base``, so flags and per-area YAML entries layer on a default.
    """
    whole = text.strip()
    defaults = base or Probe("tcp", 1)
    timing = timing or defaults.timing
    if whole.startswith("tcp:"):
        return replace(defaults, kind="tcp", port=_port(whole[4:], whole), timing=timing)
    if whole.startswith("dns:"):
        port, sep, name = whole[4:].partition(":")
        if not sep:
            raise SpecError(f"probe {whole!r} must look like dns:PORT:NAME")
        return replace(
            defaults, kind="dns", port=_port(port, whole), name=_dns_name(name, whole), timing=timing
        )
    match = _HTTP.match(whole)
    if match:
        scheme, port, path = match.groups()
        kind: Kind = "https" if scheme == "https" else "http"
        return replace(defaults, kind=kind, port=_port(port, whole), path=path or "/", timing=timing)
    raise SpecError(
        f"probe {whole!r} must be tcp:PORT, http://:PORT/PATH, https://:PORT/PATH or dns:PORT:NAME "
        "(no host: the node's own address is probed)"
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Which probe each area gets: ``areas`` overrides ``default``; None means not probed."""

    default: Probe | None = None
    areas: Mapping[str, Probe | None] = field(default_factory=dict)

    def for_area(self, area: str) -> Probe | None:
        if area in self.areas:
            return self.areas[area]
        return self.default

    @property
    def enabled(self) -> bool:
        return self.default is not None or any(p is not None for p in self.areas.values())

    def probes(self) -> list[Probe]:
        """Every distinct probe of the plan, in a stable order."""
        found = {p.key: p for p in (self.default, *self.areas.values()) if p is not None}
        return [found[k] for k in sorted(found)]


_AREA_KEYS = {
    "probe",
    "interval",
    "timeout",
    "rise",
    "fall",
    "jitter",
    "status",
    "sni",
    "verify",
    "ca_file",
    "rcode",
}


def _area_probe(area: str, entry: Any, default: Probe | None, base: Probe) -> Probe | None:
    if entry is None or entry is False or entry == "none":
        return None
    if isinstance(entry, str):
        entry = {"probe": entry}
    if not isinstance(entry, Mapping):
        raise SpecError(f"area {area!r}: expected a probe text, a mapping or 'none'")
    unknown = set(entry) - _AREA_KEYS
    if unknown:
        raise SpecError(f"area {area!r}: unknown keys {sorted(unknown)} (allowed: {sorted(_AREA_KEYS)})")
    start = default or base
    t = start.timing
    timing = Timing(
        interval=float(entry.get("interval", t.interval)),
        timeout=float(entry.get("timeout", t.timeout)),
        rise=int(entry.get("rise", t.rise)),
        fall=int(entry.get("fall", t.fall)),
        jitter=float(entry.get("jitter", t.jitter)),
    )
    try:
        timing.check()
    except SpecError as error:
        raise SpecError(f"area {area!r}: {error}") from None
    options = replace(
        start,
        status=parse_status(entry["status"]) if "status" in entry else start.status,
        sni=str(entry["sni"]) if entry.get("sni") else start.sni,
        verify=bool(entry.get("verify", start.verify)),
        ca_file=str(entry["ca_file"]) if entry.get("ca_file") else start.ca_file,
        rcode=parse_rcode(entry["rcode"]) if "rcode" in entry else start.rcode,
        timing=timing,
    )
    text = entry.get("probe")
    if text is None:
        if default is None:
            raise SpecError(f"area {area!r}: no 'probe' and no default probe to adjust")
        return replace(options, kind=default.kind, port=default.port, path=default.path, name=default.name)
    try:
        return parse(str(text), options)
    except SpecError as error:
        raise SpecError(f"area {area!r}: {error}") from None


def plan_from(document: Any, default: Probe | None, base: Probe) -> Plan:
    """The per-area plan from a parsed YAML document (see the README's probe file section).

    ``default`` is the flag-level probe (``--probe``), ``base`` carries the flag-level options so
    an area entry inherits them. The document's own ``default:`` replaces ``default``.
    """
    if document is None:
        return Plan(default, {})
    if not isinstance(document, Mapping):
        raise SpecError("the probe file must be a mapping with 'default' and/or 'areas'")
    unknown = set(document) - {"default", "areas"}
    if unknown:
        raise SpecError(f"the probe file has unknown keys {sorted(unknown)} (allowed: default, areas)")
    if "default" in document:
        default = _area_probe("default", document["default"], None, default or base)
    areas = document.get("areas") or {}
    if not isinstance(areas, Mapping):
        raise SpecError("'areas' in the probe file must map area names to probes")
    return Plan(default, {str(a).lower(): _area_probe(str(a), e, default, base) for a, e in areas.items()})


def base(settings: Settings) -> Probe:
    """The options every probe starts from (flags), before the probe text and the file."""
    timing = Timing(
        interval=settings.probe_interval,
        timeout=settings.probe_timeout,
        rise=settings.probe_rise,
        fall=settings.probe_fall,
        jitter=settings.probe_jitter,
    ).check()
    return Probe(
        "tcp",
        1,
        status=parse_status(settings.probe_http_status),
        sni=settings.probe_sni,
        verify=settings.probe_tls_verify,
        ca_file=settings.probe_ca_file,
        rcode=parse_rcode(settings.probe_dns_rcode),
        timing=timing,
    )


def plan(settings: Settings) -> Plan:
    """The plan; raises :class:`SpecError` (or OSError for an unreadable file)."""
    options = base(settings)
    default = parse(settings.probe, options) if settings.probe else None
    if settings.probe_file is None:
        return Plan(default, {})
    try:
        document = yaml.safe_load(Path(settings.probe_file).read_text())
    except yaml.YAMLError as error:
        raise SpecError(f"{settings.probe_file} is not YAML: {error}") from None
    return plan_from(document, default, options)
