"""The FastAPI application of ``otel-diag serve``: REST API, OTLP/HTTP, health, metrics.

One app on the HTTP port (4318) carries the OTLP/HTTP receiver and the REST API, as DESIGN.md
asks. It is assembled here, in the composition root: the API package provides routers over an
:class:`~otel_diag.api.context.AppContext`, the receiver its OTLP router over the ingest core,
and neither knows the other. Database outages become 503 with ``Retry-After`` (never a 500 and a stack trace), and
the OpenAPI schema is served at ``/openapi.json`` with docs at ``/docs``.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from otel_diag.api import error_groups, health, runs
from otel_diag.api.context import AppContext
from otel_diag.receiver.http import otlp_router
from otel_diag.receiver.ingest import Ingestor
from otel_diag.store.sql.engine import InvalidTenantError
from otel_diag.store.sql.failures import is_schema_missing, is_transient
from otel_diag.version import __version__

logger = logging.getLogger(__name__)


def create_app(ctx: AppContext, ingestor: Ingestor) -> FastAPI:
    """An app bound to one server's context and ingest core (several can live in one process)."""
    app = FastAPI(
        title="otel-diag",
        version=__version__,
        description="Failure diagnosis for LLM and agent applications: runs, errors, "
        "diagnoses. Tenancy: `Authorization: Bearer <key>` when API keys are configured, "
        "else the `X-Tenant` header (trusted mode).",
    )
    app.state.ctx = ctx
    app.include_router(otlp_router(ingestor, ctx.tenancy))
    app.include_router(runs.router)
    app.include_router(error_groups.router)
    app.include_router(health.router)

    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_transient(exc):
            logger.error(
                "otel-diag API: %s %s failed", request.method, request.url.path, exc_info=exc
            )
            return JSONResponse({"detail": "internal error"}, status_code=500)
        if is_schema_missing(exc):  # an emptied database: have it migrated again
            tenant = getattr(request.state, "tenant", None)
            asyncio.get_running_loop().run_in_executor(None, ctx.manager.repair, tenant)
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

    @app.exception_handler(InvalidTenantError)
    async def invalid_tenant(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app
