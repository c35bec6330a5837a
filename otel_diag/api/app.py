"""The FastAPI application of ``otel-diag serve``: REST API, OTLP/HTTP, health, metrics.

One app on the HTTP port (4318) carries the OTLP/HTTP receiver and the REST API, as DESIGN.md
asks. Database outages become 503 with ``Retry-After`` (never a 500 and a stack trace), and
the OpenAPI schema is served at ``/openapi.json`` with docs at ``/docs``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from otel_diag.api import error_groups, health, runs
from otel_diag.api.context import AppContext
from otel_diag.receiver.http import otlp_router
from otel_diag.store.engine import InvalidTenantError
from otel_diag.version import __version__


def create_app(ctx: AppContext) -> FastAPI:
    """An app bound to one server's context (several can live in one process)."""
    app = FastAPI(
        title="otel-diag",
        version=__version__,
        description="Failure diagnosis for LLM and agent applications: runs, errors, "
        "diagnoses. Tenancy: `Authorization: Bearer <key>` when API keys are configured, "
        "else the `X-Tenant` header (trusted mode).",
    )
    app.state.ctx = ctx
    app.include_router(otlp_router(ctx.ingestor, ctx.tenancy))
    app.include_router(runs.router)
    app.include_router(error_groups.router)
    app.include_router(health.router)

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "database unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(InvalidTenantError)
    async def invalid_tenant(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app
