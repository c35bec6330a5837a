"""The console's pages: Overview, Runs, Run detail, Errors, Cost, Agents, and the login.

Reads go through the request tenant's :class:`~otel_diag.store.port.TenantStore`, with the
port methods the CLI and the REST API use (``cost_breakdown`` is ``otel-diag cost``,
``run_stats`` is ``otel-diag stats``, ``error_groups`` is ``GET /api/error-groups``), so a
figure is the same wherever it is read. Page handlers are plain ``def``: FastAPI runs them in
its thread pool, so a slow query never blocks the event loop that serves OTLP. Bad query
parameters fall back to their defaults (a page, never a 422); failures are pages too
(:mod:`otel_diag.console.render`).
"""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from otel_diag.console import session
from otel_diag.console.render import ConsoleRoute, NotFound, page, static_file
from otel_diag.console.views import WINDOWS, actions, activity_charts, waterfall, window
from otel_diag.rows import RunStatus
from otel_diag.store.port import AmbiguousRunError, GroupOrder, RunQuery, RunSort, TenantStore
from otel_diag.tenants import InvalidTenantError, validate_tenant_id

PAGE_SIZE = 50
MAX_PAGE = 10_000
"""Deeper pages are refused politely (page 1): narrow the filters instead."""
RUN_ERRORS = 100
"""Errors shown on a run's page (the count says how many more there are)."""
RUN_REPORTS = 20
NOTICES = {
    "diagnosed": "Diagnosed again: the new report is on top.",
    "nothing": "This run has no recorded errors: nothing to diagnose.",
    "disabled": "Diagnosis is off on this server (OTEL_DIAG_DIAGNOSIS=off).",
}
Q = Annotated[str | None, Query()]
_OVERVIEW_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="otel-diag-overview")
"""Overview's top error groups are read beside its activity charts (two database sessions):
the page then waits for the slower of the two, not their sum."""


def _page_number(raw: str | None) -> int:
    try:
        n = int(raw or 1)
    except ValueError:
        return 1
    return n if 1 <= n <= MAX_PAGE else 1


def _choice(raw: str | None, allowed: tuple[str, ...], default: str) -> str:
    return raw if raw in allowed else default


def _store(request: Request) -> tuple[str, TenantStore | None]:
    """The tenant and its store; None when a trusted-mode tenant has no data yet (no page
    view creates and migrates a database for a made-up tenant)."""
    ctx = session.context(request)
    tenant = session.page_tenant(request)
    if ctx.tenancy.trusted and tenant not in session.known_tenants(request):
        return tenant, None
    return tenant, ctx.storage.tenant(tenant)


def console_router() -> APIRouter:
    """The console's routes at ``/`` (outside the OpenAPI schema: pages, not an API)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

    @router.get("/")
    def overview(request: Request, w: Q = None) -> Response:
        tenant, store = _store(request)
        win = window(w)
        now = datetime.now(UTC)
        data: dict[str, Any] = {"win": win, "windows": WINDOWS, "tenant": tenant}
        if store is None:
            return page(request, "overview.html", empty=True, **data)
        groups = _OVERVIEW_POOL.submit(store.error_groups, since=now - win.span, limit=5)
        buckets = store.activity(now - win.span, now + timedelta(seconds=1), win.bucket)
        depth = store.queue_depth(now, session.context(request).settings.decision_wait)
        return page(
            request,
            "overview.html",
            empty=False,
            charts=activity_charts(buckets, now, win),
            pending=sum(depth.values()),
            depth=depth,
            groups=groups.result(),
            reports=store.latest_reports(5),
            **data,
        )

    @router.get("/runs")
    def runs(
        request: Request,
        status: Q = None,
        agent: Q = None,
        service: Q = None,
        w: Q = None,
        q: Q = None,
        sort: Q = None,
        dir: Q = None,
        p: Q = None,
    ) -> Response:
        tenant, store = _store(request)
        statuses = tuple(s.value for s in RunStatus)
        filters = {
            "status": _choice(status, statuses, ""),
            "agent": (agent or "").strip()[:200],
            "service": (service or "").strip()[:200],
            "w": _choice(w, tuple(WINDOWS), ""),
            "q": (q or "").strip()[:200],
            "sort": _choice(sort, get_args(RunSort), "started_at"),
            "dir": _choice(dir, ("asc", "desc"), "desc"),
        }
        number = _page_number(p)
        rows = []
        if store is not None:
            since = datetime.now(UTC) - WINDOWS[filters["w"]].span if filters["w"] else None
            rows = store.find_runs(
                RunQuery(
                    status=filters["status"] or None,
                    agent=filters["agent"] or None,
                    service=filters["service"] or None,
                    since=since,
                    text=filters["q"] or None,
                    sort=filters["sort"],  # type: ignore[arg-type]
                    descending=filters["dir"] == "desc",
                    limit=PAGE_SIZE + 1,
                    offset=(number - 1) * PAGE_SIZE,
                )
            )
        return page(
            request,
            "runs.html",
            tenant=tenant,
            runs=rows[:PAGE_SIZE],
            more=len(rows) > PAGE_SIZE,
            page_number=number,
            filters=filters,
            statuses=statuses,
            windows=WINDOWS,
        )

    def _resolve(store: TenantStore | None, ref: str) -> uuid.UUID:
        if store is None:
            raise NotFound(f"no run {ref!r}")
        try:
            run_id = store.resolve_run(ref)
        except AmbiguousRunError as exc:
            raise NotFound(str(exc)) from None
        if run_id is None:
            raise NotFound(f"no run {ref!r}")
        return run_id

    @router.get("/runs/{ref}")
    def run_detail(request: Request, ref: str, notice: Q = None) -> Response:
        tenant, store = _store(request)
        rid = _resolve(store, ref)
        assert store is not None
        run = store.run(rid)
        if run is None:
            raise NotFound(f"no run {ref!r}")
        reports = store.reports(rid, limit=RUN_REPORTS)
        latest = reports[0] if reports else None
        settings = session.context(request).settings
        return page(
            request,
            "run.html",
            tenant=tenant,
            run=run,
            steps=waterfall(store.steps(rid), latest.resume_step if latest else None),
            errors=store.errors(rid, limit=RUN_ERRORS),
            summary=store.error_summary(rid),
            reports=reports,
            latest=latest,
            actions=actions(latest) if latest else [],
            trace_url=settings.trace_url(run.trace_id),
            notice=NOTICES.get(notice or ""),
            can_diagnose=settings.diagnosis != "off" and run.error_count > 0,
        )

    @router.post("/runs/{ref}/diagnose")
    async def diagnose(request: Request, ref: str) -> Response:
        await session.checked_form(request)
        return await run_in_threadpool(_diagnose, request, ref)

    def _diagnose(request: Request, ref: str) -> Response:
        # lazy: the LLM path (litellm) is heavy, and most page views never diagnose
        from otel_diag.diagnosis.service import (
            DiagnosisDisabledError,
            DiagnosticsService,
            NothingToDiagnoseError,
        )

        ctx = session.context(request)
        _, store = _store(request)
        rid = _resolve(store, ref)
        assert store is not None
        service = DiagnosticsService(store.tenant, manager=ctx.storage, settings=ctx.settings)
        try:
            service.analyze_failure(rid, force=True)
            notice = "diagnosed"
        except NothingToDiagnoseError:
            notice = "nothing"
        except DiagnosisDisabledError:
            notice = "disabled"
        return RedirectResponse(f"/runs/{rid}?notice={notice}#diagnosis", status_code=303)

    @router.get("/errors")
    def errors(request: Request, w: Q = None, order: Q = None, p: Q = None) -> Response:
        tenant, store = _store(request)
        win = window(w)
        chosen = _choice(order, get_args(GroupOrder), "occurrences")
        number = _page_number(p)
        groups = []
        if store is not None:
            groups = store.error_groups(
                since=datetime.now(UTC) - win.span,
                order=chosen,  # type: ignore[arg-type]
                limit=PAGE_SIZE + 1,
                offset=(number - 1) * PAGE_SIZE,
            )
        return page(
            request,
            "errors.html",
            tenant=tenant,
            groups=groups[:PAGE_SIZE],
            more=len(groups) > PAGE_SIZE,
            page_number=number,
            win=win,
            windows=WINDOWS,
            order=chosen,
            orders=get_args(GroupOrder),
        )

    @router.get("/cost")
    def cost(request: Request, w: Q = None) -> Response:
        tenant, store = _store(request)
        win = window(w, default="7d")
        now = datetime.now(UTC)
        data = store.cost_breakdown(now - win.span, now) if store is not None else None
        return page(request, "cost.html", tenant=tenant, cost=data, win=win, windows=WINDOWS)

    @router.get("/agents")
    def agents(request: Request, w: Q = None) -> Response:
        tenant, store = _store(request)
        win = window(w, default="7d")
        now = datetime.now(UTC)
        stats = store.run_stats(now - win.span, now) if store is not None else None
        return page(request, "agents.html", tenant=tenant, stats=stats, win=win, windows=WINDOWS)

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if session.context(request).tenancy.trusted:
            return RedirectResponse("/", status_code=303)
        return page(request, "login.html", tenant=None, failed=False)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await session.checked_form(request)
        tenancy = session.context(request).tenancy
        key = form.get("key", "")
        if tenancy.trusted:
            return RedirectResponse("/", status_code=303)
        if not key.strip() or session.key_tenant(tenancy, key) is None:
            return page(request, "login.html", status=401, tenant=None, failed=True)
        response = RedirectResponse("/", status_code=303)
        session.remember_key(request, response, key)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await session.checked_form(request)
        response = RedirectResponse("/login", status_code=303)
        session.forget(response)
        return response

    @router.post("/tenant")
    async def choose_tenant(request: Request) -> Response:
        """Trusted mode: which tenant's data to show (key mode: the key decides)."""
        form = await session.checked_form(request)
        response = RedirectResponse("/", status_code=303)
        if session.context(request).tenancy.trusted:
            with contextlib.suppress(InvalidTenantError):
                session.remember_tenant(
                    request, response, validate_tenant_id(form.get("tenant", ""))
                )
        return response

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        return static_file(name)

    return router
