"""Keeping the server's memory at its working set after a burst of large requests.

glibc serves big allocations from its per-thread arenas once its dynamic mmap threshold has
grown (it grows to the size of every large block freed, up to 32 MiB): after a flood of
24 MiB requests those arenas hold hundreds of MiB of free but mapped memory, spread over
gRPC's and the ingest threads' arenas, and the process's RSS (what a pod's limit counts)
stays at its peak long after the flood. Fixing the threshold at :data:`MMAP_THRESHOLD`
makes every request-sized buffer its own mapping, returned to the system when freed; a
``malloc_trim`` after a large amount of body data (:class:`Trimmer`) returns what smaller
allocations left free. Elsewhere than glibc (musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

MMAP_THRESHOLD = 1024 * 1024
"""Allocations from this size up get their own mapping (glibc's default starts at 128 KiB
and floats up to 32 MiB)."""
TRIM_AFTER_BYTES = 16 * 1024 * 1024
"""Body bytes released since the last trim that make the next idle moment worth a trim."""
SETTLE_S = 1.0
"""Delay before a trim: the transports free their own buffers once the answers are sent."""

_M_MMAP_THRESHOLD = -3
_libc: Any = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.mallopt, _libc.malloc_trim  # noqa: B018 - glibc only
except (OSError, AttributeError):
    _libc = None


def tune_allocator() -> bool:
    """Give request-sized buffers their own mappings (process-wide); True on glibc."""
    if _libc is None:
        return False
    return bool(_libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; True if that was possible here."""
    if _libc is None:
        return False
    _libc.malloc_trim(0)
    return True


class Trimmer:
    """Calls :func:`release_free_memory` (in a thread) when ingest falls idle after enough
    body data, at most one trim at a time."""

    def __init__(self, after_bytes: int = TRIM_AFTER_BYTES) -> None:
        self.after_bytes = after_bytes
        self._pending = 0
        self._running = threading.Lock()

    def idle(self, released_bytes: int) -> None:
        """Ingest holds nothing now; ``released_bytes`` were let go since the last call."""
        self._pending += released_bytes
        if self._pending < self.after_bytes or not self._running.acquire(blocking=False):
            return
        self._pending = 0
        threading.Thread(target=self._run, name="otel-diag-trim", daemon=True).start()

    def _run(self) -> None:
        try:
            time.sleep(SETTLE_S)
            release_free_memory()
        except Exception:  # never let housekeeping hurt ingest
            logger.debug("malloc_trim failed", exc_info=True)
        finally:
            self._running.release()
