"""A budget of new tenants per minute, for any storage (SQL or MongoDB).

Trusted-mode ingest takes the tenant from what the client sends, and every new tenant
costs a database (or schema) and its connections: at most ``per_minute`` are created per
minute. Tenants that already exist on storage or that the configuration names never count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from otel_diag.store.port import TenantLimitReached
from otel_diag.tenants import configured_tenants

if TYPE_CHECKING:
    from otel_diag.store.port import Storage


class NewTenantBudget:
    """At most ``per_minute`` tenants created per minute on ``storage``."""

    WINDOW_S = 60.0
    KNOWN_TTL_S = 10.0

    def __init__(self, storage: Storage, per_minute: int) -> None:
        self._storage = storage
        self.per_minute = per_minute
        self._created: deque[float] = deque()
        self._known: set[str] = set()
        self._known_at = -self.KNOWN_TTL_S
        self._lock = threading.Lock()

    def admit(self, tenant: str) -> None:
        """Return if ``tenant`` exists or fits the budget; else :class:`TenantLimitReached`."""
        settings = self._storage.settings
        if tenant in configured_tenants(settings.api_keys, settings.tenant):
            return
        with self._lock:
            now = time.monotonic()
            if tenant not in self._known and now - self._known_at >= self.KNOWN_TTL_S:
                self._known, self._known_at = set(self._storage.discover_tenants()), now
            if tenant in self._known:
                return
            while self._created and now - self._created[0] >= self.WINDOW_S:
                self._created.popleft()
            if len(self._created) >= self.per_minute:
                raise TenantLimitReached(tenant, self._created[0] + self.WINDOW_S - now)
            self._created.append(now)
            self._known.add(tenant)
