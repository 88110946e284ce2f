"""Sources: Kubernetes objects in, small validated facts out. Nothing here knows DNS wire format.

kopf is imported here, once, with kubernetes-asyncio hidden: at import time kopf probes for that
optional library (typing shims for its models, a login fallback) and importing it loads ~2,000
generated classes, 36 MB of RSS. node-dns logs kopf in with its own handler (through
:mod:`node_dns.kube`, which imports kubernetes-asyncio only for kubeconfigs with exec plugins or
auth providers). Every module that needs kopf imports it from here
(``from node_dns.sources import kopf``), so this runs first.
"""

import sys

_HIDDEN = "kubernetes_asyncio"
_hide = _HIDDEN not in sys.modules and "kopf" not in sys.modules
if _hide:
    sys.modules[_HIDDEN] = None  # type: ignore[assignment]  # an import of it raises ImportError
try:
    import kopf as kopf
finally:
    if _hide and sys.modules.get(_HIDDEN, 0) is None:
        del sys.modules[_HIDDEN]

__all__ = ["kopf"]
