"""``GET /api/error-groups``: the same failure across runs, grouped by fingerprint.

Shares its query with the CLI's ``errors --groups`` and the error-group alerts
(:mod:`otel_diag.store.sql.error_groups`). Like every endpoint, it reads the request's tenant
only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from otel_diag.api.context import Context, Tenant
from otel_diag.api.runs import parse_since
from otel_diag.api.schemas import ErrorGroupPage
from otel_diag.store.sql import error_groups

router = APIRouter(prefix="/api", tags=["errors"])


@router.get(
    "/error-groups",
    response_model=ErrorGroupPage,
    summary="Errors grouped across runs by fingerprint, busiest first",
)
def list_error_groups(
    ctx: Context,
    tenant: Tenant,
    since: Annotated[
        str | None,
        Query(description="window start: ISO 8601 time or a look-back such as 24h, 7d"),
    ] = None,
    service: Annotated[str | None, Query(description="only runs of this service")] = None,
    agent: Annotated[str | None, Query(description="only runs of this agent")] = None,
    order: Annotated[
        Literal["occurrences", "runs", "last_seen", "first_seen"], Query()
    ] = "occurrences",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    with ctx.manager.get_engine(tenant).connect() as conn:
        groups = error_groups.list_error_groups(
            conn,
            since=parse_since(since),
            service=service,
            agent=agent,
            order=order,
            limit=limit + 1,
            offset=offset,
        )
    more = len(groups) > limit
    return {
        "groups": [
            error_groups.group_json(g, ctx.settings.trace_url(g.latest_trace_id))
            for g in groups[:limit]
        ],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }
