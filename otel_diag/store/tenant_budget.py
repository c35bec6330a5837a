"""A budget of new tenants per minute, for any storage (SQL or MongoDB).

Trusted-mode ingest takes the tenant from what the client sends, and every new tenant
costs a database (or schema) and its connections: at most ``per_minute`` are created per
minute. Tenants that already exist on storage or that the configuration names never count.

With ingest worker processes (``OTEL_DIAG_INGEST_PROCESSES``) the server and its workers
draw from one :class:`BudgetWindow` in shared memory, so N processes do not create N times
the budget.
"""

from __future__ import annotations

import math
import threading
import time
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

from otel_diag.store.port import TenantLimitReached
from otel_diag.tenants import configured_tenants

if TYPE_CHECKING:
    from otel_diag.store.port import Storage

WINDOW_S = 60.0
NAME_BYTES = 48
"""The longest tenant id (:data:`otel_diag.tenants.TENANT_ID_RE`), ASCII."""


class BudgetWindow:
    """Which new tenants were created in the last minute, and when (``time.monotonic()``,
    one clock for every process of a machine): a slot per tenant the budget allows.

    A tenant that holds a slot is known to every process sharing the window, even before
    its database exists, so a request for it landing on another process is not charged
    again. :meth:`shared` puts the slots in shared memory for a spawned process to inherit
    (pass the window in the process's arguments); the default lives in this process only.
    """

    def __init__(self, per_minute: int, times: Any = None, names: Any = None) -> None:
        self.per_minute = per_minute
        self._shared = times is not None
        if times is None:  # a list and a bytearray index and slice like the shared arrays
            times, names = [-math.inf] * per_minute, bytearray(per_minute * NAME_BYTES)
        self._lock: Any = times.get_lock() if self._shared else threading.Lock()
        self._times, self._names = times, names

    @classmethod
    def shared(cls, per_minute: int, ctx: BaseContext) -> BudgetWindow:
        times = ctx.Array("d", [-math.inf] * per_minute)
        return cls(per_minute, times, ctx.Array("c", per_minute * NAME_BYTES, lock=False))

    def __getstate__(self) -> dict[str, Any]:
        if not self._shared:
            raise TypeError("only a BudgetWindow.shared() window can be given to a process")
        return {"per_minute": self.per_minute, "times": self._times, "names": self._names}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["per_minute"], state["times"], state["names"])  # type: ignore[misc]

    def _name(self, slot: int) -> bytes:
        return bytes(self._names[slot * NAME_BYTES : (slot + 1) * NAME_BYTES]).rstrip(b"\0")

    def _set_name(self, slot: int, name: bytes) -> None:
        self._names[slot * NAME_BYTES : (slot + 1) * NAME_BYTES] = name.ljust(NAME_BYTES, b"\0")

    def take(self, tenant: str, now: float) -> float | None:
        """Spend a slot on ``tenant`` at ``now`` (free if it holds one already): None when it
        may be created, else the seconds until a slot is free."""
        name = tenant.encode("ascii")
        with self._lock:
            live = [i for i in range(self.per_minute) if now - self._times[i] < WINDOW_S]
            if any(self._name(i) == name for i in live):
                return None
            oldest = min(range(self.per_minute), key=self._times.__getitem__)
            wait = self._times[oldest] + WINDOW_S - now
            if wait > 0:
                return float(wait)
            self._times[oldest] = now
            self._set_name(oldest, name)
            return None


class NewTenantBudget:
    """At most ``per_minute`` tenants created per minute on ``storage`` (and on every
    process that shares ``window``)."""

    KNOWN_TTL_S = 10.0

    def __init__(self, storage: Storage, per_minute: int, window: BudgetWindow | None = None):
        self._storage = storage
        self._window = window or BudgetWindow(per_minute)
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
            wait = self._window.take(tenant, now)
            if wait is not None:
                raise TenantLimitReached(tenant, wait)
            self._known.add(tenant)
