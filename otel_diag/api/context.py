"""What every API handler needs, in one object on ``app.state``, and the tenant dependency.

The tenant of an API request comes from :class:`~otel_diag.tenancy.Tenancy` only
(the key's tenant, or ``X-Tenant`` in trusted mode), never from the path or a query
parameter, so no URL can reach another tenant's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from otel_diag.config import Settings
from otel_diag.metrics import ServerMetrics
from otel_diag.store.sql.engine import InvalidTenantError, TenantDBManager
from otel_diag.tenancy import Tenancy, Unauthenticated


@dataclass
class AppContext:
    """Shared state of one server the API handlers read: settings, engines, tenancy, metrics."""

    settings: Settings
    manager: TenantDBManager
    tenancy: Tenancy
    metrics: ServerMetrics


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def request_tenant(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_tenant: Annotated[str | None, Header()] = None,
) -> str:
    """The tenant this request may read: 401 without a valid key (keys mode)."""
    ctx = get_context(request)
    try:
        tenant = ctx.tenancy.api_tenant(authorization, x_tenant)
    except Unauthenticated as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    except InvalidTenantError as exc:
        raise HTTPException(400, str(exc)) from None
    # Trusted mode: a header must not create (and migrate) a database for a made-up tenant.
    if not ctx.tenancy.tenants and tenant not in ctx.manager.discover_tenants():
        raise HTTPException(404, f"no data for tenant {tenant!r}")
    request.state.tenant = tenant  # for the database-error handler (migrate it again)
    return tenant


Tenant = Annotated[str, Depends(request_tenant)]
Context = Annotated[AppContext, Depends(get_context)]
