"""The one policy for reading credentials again, keeping the last good ones.

Files are read again when the last read is older than ``reread_after`` (projected
service-account tokens rotate hourly, and the old token dies some time later) and at once after
a 401. If they cannot be read right now (a half-written secret mount, an exec plugin that fails
once), the last good credentials stay in use: an outage of the files must not become an outage
of the zone. kopf's login and :class:`node_dns.kube.client.Client` both go through here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from node_dns.kube import kubeconfig
from node_dns.kube.credentials import Credentials
from node_dns.kube.errors import KubeconfigError

log = logging.getLogger(__name__)

REREAD_AFTER = 60.0
"""Seconds a file-based read stays current (client-go re-reads token files every minute)."""


class CredentialsLoader:
    """Reads the credentials (:meth:`load`) and decides when to read them again (:meth:`current`,
    :meth:`refresh`), keeping the last good ones when a later read fails.

    Sources, in order: ``kubeconfig`` if given, else the pod's service account (when
    ``KUBERNETES_SERVICE_HOST`` is set), else ``$KUBECONFIG`` or ``~/.kube/config``. A kubeconfig
    whose user runs an exec plugin or an auth provider is read by kubernetes-asyncio, which
    implements those (``via_library`` tells); its result is handed out like any other.
    """

    def __init__(
        self,
        kubeconfig_path: str | None,
        *,
        service_account: Path = kubeconfig.SERVICE_ACCOUNT,
        environ: Mapping[str, str] | None = None,
        reread_after: float = REREAD_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kubeconfig = kubeconfig_path
        self.via_library = False
        self._service_account = service_account
        self._environ = environ if environ is not None else os.environ
        self._reread_after = reread_after
        self._clock = clock
        self._last: Credentials | None = None
        self._read_at = 0.0

    @property
    def in_cluster(self) -> bool:
        return self.kubeconfig is None and bool(self._environ.get("KUBERNETES_SERVICE_HOST"))

    async def load(self) -> Credentials:
        """Read the credentials now; every failure is one :class:`KubeconfigError` line."""
        try:
            if self.in_cluster:
                fresh = kubeconfig.in_cluster(self._environ, self._service_account)
            else:
                fresh = await self._from_kubeconfig()
        except KubeconfigError:
            raise
        except Exception as error:
            raise kubeconfig.unusable(error) from error
        self._last, self._read_at = fresh, self._clock()
        return fresh

    async def _from_kubeconfig(self) -> Credentials:
        paths = kubeconfig.paths(self.kubeconfig, self._environ)
        if not self.via_library:
            try:
                return kubeconfig.read(paths)
            except kubeconfig.NeedsLibrary:
                self.via_library = True
        return await kubeconfig.read_with_library(self.kubeconfig, self._environ)

    async def refresh(self) -> Credentials:
        """Read again (after a 401, or when kopf logs in); if that fails, keep the last good ones.

        Raises :class:`KubeconfigError` only when no read has ever succeeded.
        """
        try:
            return await self.load()
        except KubeconfigError as error:
            if self._last is None:
                raise
            log.warning("keeping the current credentials: %s", error)
            self._read_at = self._clock()  # do not retry a failing read on every request
            return self._last

    async def current(self) -> Credentials:
        """The credentials to use for a request: the last read, or a new read once it is stale.

        Credentials from an exec plugin are kept until the apiserver rejects them: running the
        plugin each minute would be a subprocess (often a cloud API call) per minute.
        """
        if self._last is not None and (
            self.via_library or self._clock() - self._read_at < self._reread_after
        ):
            return self._last
        return await self.refresh()
