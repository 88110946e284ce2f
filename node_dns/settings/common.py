"""Settings both commands read, the controller (pydantic groups) and the node agent (plain
:class:`~node_dns.settings.spec.Setting`): defined here once, without pydantic.

The controller's groups take their defaults, meanings, titles and parsers from these
(:mod:`~node_dns.settings.kubernetes`, :mod:`~node_dns.settings.logs`, the node source's
``discovered_annotation``), so a flag means the same to both.
"""

from __future__ import annotations

from node_dns.settings import spec
from node_dns.settings.spec import Section, Setting

KUBECONFIG = Setting(
    "kubeconfig",
    None,
    "Path(s) to a kubeconfig (':'-separated). Unset: the pod's service account, else "
    "$KUBECONFIG or ~/.kube/config. Exec plugins and auth providers are supported.",
    spec.optional_text,
    nullable=True,
)
KUBERNETES = Section(
    "Kubernetes access",
    "How node-dns reaches the apiserver. Whether the kubeconfig can be read is checked at startup.",
    (KUBECONFIG,),
)

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_LEVEL = Setting(
    "log_level",
    "info",
    "Log level.",
    spec.choice(LOG_LEVELS, lower=True),
    chart="config.logLevel",
    choices=LOG_LEVELS,
)
LOG_JSON = Setting(
    "log_json", False, "Log one JSON object per line.", spec.boolean, kind=bool, chart="config.logJson"
)
LOGGING = Section("Logging", "How much is logged, and in which format.", (LOG_LEVEL, LOG_JSON))

DISCOVERED_ANNOTATION = Setting(
    "discovered_annotation",
    "node-dns/discovered-ips",
    "Node annotation the node agent (`node-dns agent`) writes with the node's reachable "
    "addresses; read by the `discovered` IP source.",
    spec.annotation_key,
    chart="config.discoveredAnnotation",
)
