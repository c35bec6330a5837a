"""The FastAPI application of ``otel-diag serve``: REST API, OTLP/HTTP, health, metrics, and
the web console at ``/``.

One app on the HTTP port (4318) carries the OTLP/HTTP receiver and the REST API, as DESIGN.md
asks. It is assembled here, in the composition root: the API package provides routers over an
:class:`~otel_diag.api.context.AppContext`, the receiver its OTLP router over the ingest core,
and neither knows the other. Database outages of the API become 503 with ``Retry-After``
(never a 500 and a stack trace; see :mod:`otel_diag.api.outages`), and the OpenAPI schema
is served at ``/openapi.json`` with docs at ``/docs``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from otel_diag.api import error_groups, health, runs
from otel_diag.api.context import AppContext
from otel_diag.console import console_router
from otel_diag.receiver.http import otlp_router
from otel_diag.receiver.ingest import Ingestor
from otel_diag.tenants import InvalidTenantError
from otel_diag.version import __version__


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
    app.include_router(console_router())  # its paths (/, /runs, ...) are not the API's

    @app.exception_handler(InvalidTenantError)
    async def invalid_tenant(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app
