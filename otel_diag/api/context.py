"""What every API handler needs, in one object on ``app.state``, and the tenant dependencies.

The tenant of an API request comes from :class:`~otel_diag.tenancy.Tenancy` only
(the key's tenant, or ``X-Tenant`` in trusted mode), never from the path or a query
parameter, so no URL can reach another tenant's data. Handlers read that tenant's data
through its :class:`~otel_diag.store.port.TenantStore` (the ``Store`` dependency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from otel_diag.config import Settings
from otel_diag.metrics import ServerMetrics
from otel_diag.store.port import Storage, TenantStore
from otel_diag.tenancy import Tenancy, Unauthenticated
from otel_diag.tenants import InvalidTenantError


@dataclass
class AppContext:
    """Shared state of one server the API handlers read: settings, storage, tenancy, metrics."""

    settings: Settings
    storage: Storage
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
    if not ctx.tenancy.tenants and tenant not in ctx.storage.discover_tenants():
        raise HTTPException(404, f"no data for tenant {tenant!r}")
    request.state.tenant = tenant  # for the database-failure answer (migrate it again)
    return tenant


Tenant = Annotated[str, Depends(request_tenant)]
Context = Annotated[AppContext, Depends(get_context)]


def tenant_store(ctx: Context, tenant: Tenant) -> TenantStore:
    """The request's tenant's data (its database opened on first use)."""
    return ctx.storage.tenant(tenant)


Store = Annotated[TenantStore, Depends(tenant_store)]
