"""Database outages answer 503 with ``Retry-After``, never a 500 and a stack trace.

Every API router is built with :class:`StorageRoute`. A failure the storage calls
transient (:meth:`~otel_diag.store.port.Storage.is_transient`: the database is down,
locked, restarting, read-only) answers 503 with ``Retry-After: 5``; a schema that vanished
(a restore of an empty backup, a failover to a fresh instance) answers 503 with
``Retry-After: 1`` while the tenant's schema is migrated again in the background. The
storage classifies the exception, so the API knows no database driver. Exceptions the app
has a handler for (HTTP errors, validation errors, invalid tenant ids) pass through;
anything else is logged and answered 500 ``internal error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

logger = logging.getLogger(__name__)


def _has_handler(request: Request, exc: Exception) -> bool:
    handlers = request.app.exception_handlers
    return any(cls in handlers for cls in type(exc).__mro__)


def failure_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an exception no handler claims (see the module docstring)."""
    storage = request.app.state.ctx.storage
    if not storage.is_transient(exc):
        logger.error("otel-diag API: %s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    if storage.is_schema_missing(exc):  # an emptied database: have it migrated again
        tenant = getattr(request.state, "tenant", None)
        asyncio.get_running_loop().run_in_executor(None, storage.repair, tenant)
        return JSONResponse(
            {"detail": "database not ready (no schema; migrating it); retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse(
        {"detail": "database unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


class StorageRoute(APIRoute):
    """An API route whose storage failures become the answers above."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                if _has_handler(request, exc):
                    raise
                return failure_response(request, exc)

        return guarded
