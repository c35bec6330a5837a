"""Connections on both ports: capped, closed when idle, and quiet at the open-file limit.

Without this, idle connections were never closed nor capped, and at the open-file limit
asyncio's accept loop retried ``accept()`` hundreds of times per loop turn, logging a
traceback each time (130k tracebacks, 58 MB, a core busy, in 6 s). Now:

* ``serve`` raises its soft open-file limit to the hard one, and caps connections per port
  (``OTEL_DIAG_MAX_CONNECTIONS``) below what the limit leaves after :data:`RESERVED_FDS`
  (databases, files, an accept burst): a connection over the cap is closed at once;
* a connection that has sent no complete request for ``OTEL_DIAG_IDLE_TIMEOUT`` seconds is
  closed (HTTP: a new connection, a keep-alive one, or one trickling its headers; gRPC:
  ``grpc.max_connection_idle_ms`` and the handshake timeout);
* asyncio accepts at most :data:`ACCEPT_BATCH` connections per loop turn, and "out of
  system resource" accept errors are logged once per :data:`ACCEPT_ERROR_LOG_INTERVAL_S`
  (asyncio itself pauses accepting for a second after each).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

RESERVED_FDS = 192
"""Open files kept free of connections: databases, SQLite files, pipes, an accept burst."""
ACCEPT_BATCH = 64
"""Connections asyncio accepts per loop turn (and the HTTP listen backlog)."""
ACCEPT_ERROR_LOG_INTERVAL_S = 60.0


def raise_open_file_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int, open_files: int) -> int:
    """Connections allowed per port: the configured cap, lowered to fit the open-file limit
    with two ports and :data:`RESERVED_FDS` to spare."""
    return max(8, min(configured, (open_files - RESERVED_FDS) // 2))


def guarded_http_protocol(max_connections: int, idle_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a connection cap and an idle / slow-header timeout."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._idle_since = 0.0
            self._idle_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= max_connections:
                self.transport = transport  # connection_lost expects it
                transport.abort()  # frees the file descriptor now; the client may retry
                return
            super().connection_made(transport)
            self._idle_since = self.loop.time()
            self._idle_timer = self.loop.call_later(idle_timeout, self._idle_check)

        def _idle_check(self) -> None:
            """Close a connection with no request under way for ``idle_timeout`` seconds
            (partial headers do not count: a client trickling them is not busy)."""
            self._idle_timer = None
            if self.transport is None or self.transport.is_closing():
                return
            now = self.loop.time()
            busy = self.cycle is not None and not self.cycle.response_complete
            if busy or self.conn.their_state is not h11.IDLE:
                self._idle_since = now
            elif now - self._idle_since >= idle_timeout:
                self.transport.close()
                return
            delay = max(0.05, self._idle_since + idle_timeout - now)
            self._idle_timer = self.loop.call_later(delay, self._idle_check)

        def on_response_complete(self) -> None:
            self._idle_since = self.loop.time()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            super().connection_lost(exc)

    return GuardedH11Protocol


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log asyncio's "accept() out of system resource" once per interval, not per attempt."""
    previous = loop.get_exception_handler()
    state = {"last": -ACCEPT_ERROR_LOG_INTERVAL_S, "suppressed": 0}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != "socket.accept() out of system resource":
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - state["last"] < ACCEPT_ERROR_LOG_INTERVAL_S:
            state["suppressed"] += 1
            return
        logger.error(
            "otel-diag: cannot accept connections: %s (%d more since the last report); "
            "retrying every second. Raise the open-file limit or lower OTEL_DIAG_MAX_CONNECTIONS",
            context.get("exception"),
            state["suppressed"],
        )
        state["last"], state["suppressed"] = now, 0

    loop.set_exception_handler(handler)
