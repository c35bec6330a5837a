"""The hourly error-group rollup stays equal to a count of the rows, whatever arrives when.

Random runs of a few traces each are cut into random batches and written in random order,
some twice: children before the root that names their run (trace-id runs merged later),
propagated copies before or after the failure they repeat (settlement moves rows), the
agent's name and the root's service arriving late. After every batch the rollup the
writer kept must equal :func:`group_hours.rebuild`'s, and at the end every page of groups
ranked from it must equal the page counted from the rows, for windows that start inside
an hour, on an hour, and never.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import StatusCode
from sqlalchemy import select

from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.spans.record import SpanRecord
from otel_diag.store.sql import group_hours
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.error_groups import list_error_groups
from otel_diag.store.sql.models import error_group_hours
from tests.factories import make_span, new_span_id, new_trace_id

HOUR_NS = 3600 * 10**9
MESSAGES = ["disk full", "card declined", "quota exceeded", "upstream 503"]
SERVICES = ["shop", "depot"]
AGENTS = ["buyer", "seller", "clerk"]


def _trace(rng: random.Random, run_key: str | None, at_ns: int) -> list[ReadableSpan]:
    """A root, an agent and 1-4 tools; failures propagate to the agent and root as the SDK
    records them (same exception event on each enclosing span)."""
    trace_id = new_trace_id(rng)
    root_id, agent_id = new_span_id(rng), new_span_id(rng)
    resource = Resource.create({"service.name": rng.choice(SERVICES)})
    spans = []
    failure = None
    for i in range(rng.randint(1, 4)):
        start = at_ns + i * rng.randint(1, 40 * 60) * 10**9
        fails = rng.random() < 0.6
        text = rng.choice(MESSAGES)
        events = [
            Event("exception", {"exception.type": "IOError", "exception.message": text}, start + 5)
        ]
        spans.append(
            make_span(
                f"execute_tool t{i}",
                trace_id=trace_id,
                parent_id=agent_id,
                start_ns=start,
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"t{i}"},
                status=StatusCode.ERROR if fails else StatusCode.UNSET,
                events=events if fails else None,
                resource=resource,
            )
        )
        if fails:
            failure = (text, start + 5)
    copies: list[Event] | None = None
    status = StatusCode.UNSET
    if failure is not None and rng.random() < 0.7:
        text, at = failure
        copies = [Event("exception", {"exception.type": "IOError", "exception.message": text}, at)]
        status = StatusCode.ERROR
    end = max(s.end_time or 0 for s in spans)
    spans.append(
        make_span(
            "invoke_agent",
            trace_id=trace_id,
            span_id=agent_id,
            parent_id=root_id,
            start_ns=at_ns,
            duration_ns=end - at_ns + 10,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": rng.choice(AGENTS),
            },
            status=status,
            events=copies,
            resource=resource,
        )
    )
    spans.append(
        make_span(
            "invoke_workflow",
            trace_id=trace_id,
            span_id=root_id,
            start_ns=at_ns,
            duration_ns=end - at_ns + 20,
            attributes={
                "gen_ai.operation.name": "invoke_workflow",
                **({"otel_diag.run.id": run_key} if run_key else {}),
            },
            status=status,
            events=copies,
            resource=Resource.create({"service.name": rng.choice(SERVICES)}),
        )
    )
    return spans


def _batches(rng: random.Random, now_ns: int) -> list[list[ReadableSpan]]:
    spans: list[ReadableSpan] = []
    for r in range(60):
        run_key = f"run-{r}" if rng.random() < 0.6 else None
        first = now_ns - rng.randint(60, 8 * 60 * 60) * 10**9
        for t in range(rng.randint(1, 3) if run_key else 1):
            spans += _trace(rng, run_key, first + t * rng.randint(0, 90 * 60) * 10**9)
    rng.shuffle(spans)
    batches = []
    while spans:
        size = rng.randint(1, 25)
        batches.append(spans[:size])
        spans = spans[size:]
    # Re-sends: a few batches arrive twice, later.
    for batch in rng.sample(batches, 5):
        batches.insert(rng.randrange(len(batches) + 1), list(batch))
    return batches


def _rollup(manager: TenantDBManager) -> dict[tuple[Any, ...], tuple[int, int]]:
    t = error_group_hours.c
    with manager.get_engine().connect() as conn:
        rows = conn.execute(
            select(t.fingerprint, t.hour, t.service_name, t.agent_name, t.occurrences, t.runs_last)
        )
        return {tuple(row[:4]): (row[4], row[5]) for row in rows}


def _rebuilt(manager: TenantDBManager) -> dict[tuple[Any, ...], tuple[int, int]]:
    """What a from-scratch count gives, computed in a transaction that is rolled back."""
    t = error_group_hours.c
    with manager.get_engine().connect() as conn, conn.begin() as tx:
        group_hours.rebuild(conn)
        rows = conn.execute(
            select(t.fingerprint, t.hour, t.service_name, t.agent_name, t.occurrences, t.runs_last)
        )
        found = {tuple(row[:4]): (row[4], row[5]) for row in rows}
        tx.rollback()
    return found


def _summary(groups: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            g.fingerprint,
            g.occurrences,
            g.runs_affected,
            g.services,
            g.agents,
            g.first_seen,
            g.last_seen,
            g.latest_run_id,
        )
        for g in groups
    ]


@pytest.mark.parametrize("seed", [1])
def test_the_rollup_equals_a_recount_after_every_batch_and_pages_match_the_rows(
    manager: TenantDBManager, exporter: ErrorLogSpanExporter, seed: int
):
    rng = random.Random(seed)
    now_ns = time.time_ns()
    saw_rows = False
    for batch in _batches(rng, now_ns):
        assert exporter.export(batch) == SpanExportResult.SUCCESS
        kept = _rollup(manager)
        assert kept == _rebuilt(manager)
        saw_rows = saw_rows or bool(kept)
    assert saw_rows

    now = datetime.fromtimestamp(now_ns / 1e9, UTC)
    on_the_hour = datetime.fromtimestamp((now_ns // HOUR_NS - 4) * 3600, UTC)
    windows = [None, now - timedelta(hours=24), now - timedelta(minutes=95), on_the_hour]
    windows += [now - timedelta(minutes=m) for m in (137, 199, 263)]
    # Early in an hour (its rows before `since` come off the rollup) and late (its rows
    # after `since` are counted).
    windows += [on_the_hour + timedelta(minutes=m) for m in (7, 53, 125, 171)]
    future = now + timedelta(days=1)
    pages = [(None, None, 50, 0), ("shop", None, 50, 0), (None, "buyer", 50, 0), (None, None, 2, 1)]
    with manager.get_engine().connect() as conn:
        for since in windows:
            for order in ("occurrences", "runs", "last_seen", "first_seen"):
                for service, agent, limit, offset in pages:
                    kw = {
                        "since": since,
                        "service": service,
                        "agent": agent,
                        "order": order,
                        "limit": limit,
                        "offset": offset,
                    }
                    from_hours = list_error_groups(conn, **kw)  # type: ignore[arg-type]
                    from_rows = list_error_groups(conn, until=future, **kw)  # type: ignore[arg-type]
                    assert _summary(from_hours) == _summary(from_rows), kw


def _failing(
    name: str, trace_id: int, span_id: int, parent_id: int | None, run_key: str, at_ns: int
) -> ReadableSpan:
    return make_span(
        name,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        start_ns=at_ns,
        attributes={"gen_ai.operation.name": "execute_tool", "otel_diag.run.id": run_key},
        status=StatusCode.ERROR,
        events=[
            Event(
                "exception", {"exception.type": "IOError", "exception.message": "disk full"}, at_ns
            )
        ],
    )


def test_a_failure_moved_out_of_another_run_leaves_that_run_counted_nowhere(
    manager: TenantDBManager, exporter: ErrorLogSpanExporter
):
    # The parent (run a) is stored as the failure; its child (run b, same trace, same
    # exception) arrives later, so the parent's row becomes a copy of the child's.
    at = time.time_ns() - HOUR_NS
    trace_id, parent_id = new_trace_id(), new_span_id()
    exporter.export([_failing("outer", trace_id, parent_id, None, "a", at)])
    exporter.export([_failing("inner", trace_id, new_span_id(), parent_id, "b", at)])

    kept = _rollup(manager)

    assert kept == _rebuilt(manager)
    assert sum(runs for _, runs in kept.values()) == 1


def _records(spans: list[ReadableSpan]) -> list[SpanRecord]:
    return [r for r in map(from_readable_span, spans) if r is not None]


def test_concurrent_writers_of_one_run_add_up(
    manager: TenantDBManager, exporter: ErrorLogSpanExporter
):
    # Many traces of the same two runs, written by four threads at once: on PostgreSQL
    # the run locks keep each run's before/after reads from interleaving.
    rng = random.Random(5)
    now_ns = time.time_ns()
    traces = [
        _trace(rng, f"shared-{i % 2}", now_ns - rng.randint(1, 5 * 3600) * 10**9) for i in range(40)
    ]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(exporter.sink.write, [_records(t) for t in traces]))

    assert all(not r.reasons for r in results)
    kept = _rollup(manager)
    assert kept and kept == _rebuilt(manager)


def test_a_failure_in_the_last_millisecond_of_an_hour_counts_in_that_hour(
    manager: TenantDBManager, exporter: ErrorLogSpanExporter
):
    # SQLite's strftime rounds to the millisecond: hh:59:59.9996 must not become hh+1.
    hour = time.time_ns() // HOUR_NS - 3
    at = (hour + 1) * HOUR_NS - 400_000
    exporter.export([_failing("late", new_trace_id(), new_span_id(), None, "edge", at)])
    inside = datetime.fromtimestamp(hour * 3600 + 1800, UTC)
    future = datetime.now(UTC) + timedelta(days=1)

    kept = _rollup(manager)

    assert [key[1] for key in kept] == [hour]
    with manager.get_engine().connect() as conn:
        for since in (None, inside):
            for order in ("occurrences", "last_seen", "first_seen"):
                for service in (None, ""):  # '' is the unknown service on both paths
                    kw: dict[str, Any] = {"since": since, "order": order, "service": service}
                    from_hours = list_error_groups(conn, **kw)
                    assert _summary(from_hours) == _summary(
                        list_error_groups(conn, until=future, **kw)
                    )
                    assert [g.occurrences for g in from_hours] == ([1] if service is None else [])
