"""``GET /api/error-groups``: the same failure across runs, grouped by fingerprint.

The same store query as the CLI's ``errors --groups`` and the error-group alerts
(:meth:`~otel_diag.store.port.TenantStore.error_groups`). Like every endpoint, it reads the
request's tenant only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from otel_diag.api.context import Context, Store
from otel_diag.api.outages import StorageRoute
from otel_diag.api.runs import parse_since
from otel_diag.api.schemas import ErrorGroupPage
from otel_diag.rows import to_json
from otel_diag.store.port import GroupOrder

router = APIRouter(prefix="/api", tags=["errors"], route_class=StorageRoute)


@router.get(
    "/error-groups",
    response_model=ErrorGroupPage,
    summary="Errors grouped across runs by fingerprint, busiest first",
)
def list_error_groups(
    ctx: Context,
    store: Store,
    since: Annotated[
        str | None,
        Query(description="window start: ISO 8601 time or a look-back such as 24h, 90min, 7d"),
    ] = None,
    service: Annotated[str | None, Query(description="only runs of this service")] = None,
    agent: Annotated[str | None, Query(description="only runs of this agent")] = None,
    order: Annotated[GroupOrder, Query()] = "occurrences",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    groups = store.error_groups(
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
            {**to_json(g), "latest_trace_url": ctx.settings.trace_url(g.latest_trace_id)}
            for g in groups[:limit]
        ],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }
