"""How much ingest may hold at once: requests, body bytes, and each tenant's share of both.

Memory is what an attacker (or a burst) exhausts, and a request costs its body size, not
one unit: so admission counts bytes as well as requests. A body is counted from before its
first byte is read until its spans are stored:

* OTLP/HTTP reserves its ``Content-Length`` (or grows chunk by chunk without one);
* OTLP/gRPC cannot know a message's size before reading it, so it reserves the request
  limit while reading and keeps only the real size afterwards.

With several API-key tenants each tenant may hold at most ``tenant_share`` of both limits,
so one tenant's slow or huge uploads leave the others room (a single tenant, or trusted
mode where the tenant is only known after decoding, has the whole). When the whole is full
a request waits briefly (an unread body costs no memory) and is then refused with
:class:`~otel_diag.receiver.errors.Overloaded`; a tenant over its share is refused at once.

Everything here runs on the server's event loop; the gauges read the counters from the
metrics thread, which is safe for plain ints.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType

from otel_diag.receiver.errors import Overloaded

ADMIT_WAIT_S = 0.5
"""How long a request waits for room before it is refused (its body unread meanwhile)."""


class Admission:
    """The in-flight limits of one server (see the module docstring)."""

    def __init__(
        self,
        max_requests: int,
        max_bytes: int,
        *,
        tenant_share: float | None = None,
        on_idle: Callable[[int], None] | None = None,
    ) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.tenant_share = tenant_share
        self.requests = 0
        self.bytes = 0
        self.closed = False
        self._tenant_requests: Counter[str] = Counter()
        self._tenant_bytes: Counter[str] = Counter()
        self._released = 0
        self._on_idle = on_idle
        self._room: asyncio.Event | None = None

    def _tenant_limits(self) -> tuple[int, int]:
        share = self.tenant_share or 1.0
        return max(1, math.floor(self.max_requests * share)), int(self.max_bytes * share)

    def _tenant_over(self, tenant: str | None, nbytes: int, *, new_request: bool) -> bool:
        """Whether ``tenant`` would pass its share (a lone request may use the whole)."""
        if tenant is None or self.tenant_share is None:
            return False
        requests, nbytes_limit = self._tenant_limits()
        held = self._tenant_requests[tenant]
        if new_request and held + 1 > requests:
            return True
        others = held if new_request else held - 1
        return others > 0 and self._tenant_bytes[tenant] + nbytes > nbytes_limit

    def _fits(self, nbytes: int, *, new_request: bool) -> bool:
        """Whether the whole has room (a lone request may use all of it, whatever its size)."""
        if new_request and self.requests + 1 > self.max_requests:
            return False
        others = self.requests if new_request else self.requests - 1
        return others == 0 or self.bytes + nbytes <= self.max_bytes

    async def admit(self, reserve: int, tenant: str | None = None) -> Slot:
        """A slot holding ``reserve`` bytes, or :class:`Overloaded` (at once, or after
        :data:`ADMIT_WAIT_S` when the server as a whole is full)."""
        if self.closed:
            raise Overloaded("otel-diag is shutting down; retry later")
        if self._tenant_over(tenant, reserve, new_request=True):
            raise Overloaded(f"tenant {tenant!r} is at its share of in-flight requests; retry")
        deadline = time.monotonic() + ADMIT_WAIT_S
        while not self._fits(reserve, new_request=True):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                raise Overloaded("otel-diag is at its in-flight limit; retry later")
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), remaining)
            except TimeoutError:
                continue
            if self._tenant_over(tenant, reserve, new_request=True):
                raise Overloaded(f"tenant {tenant!r} is at its share of in-flight requests")
        return Slot(self, tenant, reserve)

    def _add(self, slot: Slot, delta: int) -> None:
        self.bytes += delta
        if slot.tenant is not None:
            self._tenant_bytes[slot.tenant] += delta

    def _hold(self, slot: Slot) -> None:
        self.requests += 1
        self._add(slot, slot.nbytes)
        if slot.tenant is not None:
            self._tenant_requests[slot.tenant] += 1

    def _release(self, slot: Slot) -> None:
        self.requests -= 1
        self._add(slot, -slot.nbytes)
        self._released += slot.nbytes
        if slot.tenant is not None:
            self._tenant_requests[slot.tenant] -= 1
            if not self._tenant_requests[slot.tenant]:
                del self._tenant_requests[slot.tenant]
                del self._tenant_bytes[slot.tenant]
        if self._room is not None:
            self._room.set()
        if self.requests == 0 and self._on_idle is not None:
            released, self._released = self._released, 0
            self._on_idle(released)

    def close(self) -> None:
        self.closed = True
        if self._room is not None:
            self._room.set()


class Slot:
    """One admitted request: its tenant and the bytes it holds. A context manager."""

    def __init__(self, admission: Admission, tenant: str | None, nbytes: int) -> None:
        self._admission = admission
        self.tenant = tenant
        self.nbytes = nbytes
        self._held = False
        admission._hold(self)
        self._held = True

    def resize(self, nbytes: int) -> None:
        """Hold ``nbytes`` from now on (a gRPC body's real size once read)."""
        self._admission._add(self, nbytes - self.nbytes)
        self.nbytes = nbytes

    def grow(self, nbytes: int) -> None:
        """Hold ``nbytes`` more (a body read in chunks); :class:`Overloaded` past the limits."""
        admission = self._admission
        if not admission._fits(nbytes, new_request=False) or admission._tenant_over(
            self.tenant, nbytes, new_request=False
        ):
            raise Overloaded("otel-diag is at its in-flight byte limit; retry later")
        self.resize(self.nbytes + nbytes)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission._release(self)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
