"""The web console's port methods: the run list (filters, text, sort, pages), activity per
time bucket, and the latest diagnoses, through the storage port on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import StatusCode

from otel_diag.rows import Report
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.port import RunQuery, Storage
from tests.factories import exception_event, make_span

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
MS = 1_000_000


def _run(
    exporter: ErrorLogSpanExporter,
    name: str,
    *,
    service: str,
    minute: int,
    duration_ms: int,
    failed: bool = False,
    root: bool = True,
) -> None:
    start = int((T0 + timedelta(minutes=minute)).timestamp() * 1e9)
    resource = Resource.create({"service.name": service})
    events = [exception_event("ValueError", f"{name} broke")] if failed else []
    status = StatusCode.ERROR if failed else StatusCode.OK
    span = make_span(
        name,
        start_ns=start,
        duration_ns=duration_ms * MS,
        resource=resource,
        status=status,
        events=events,
    )
    if not root:  # a child whose root never arrives: the run stays open
        span = make_span(
            f"execute_tool {name}",
            start_ns=start,
            duration_ns=duration_ms * MS,
            resource=resource,
            parent_id=7,
            attributes={"gen_ai.tool.name": name, "gen_ai.operation.name": "execute_tool"},
        )
    exporter.export([span])


def _names(storage: Storage, **query: object) -> list[str | None]:
    return [r.name for r in storage.tenant("default").find_runs(RunQuery(**query))]  # type: ignore[arg-type]


def test_find_runs_filters_sorts_and_pages(
    storage: Storage, store_exporter: ErrorLogSpanExporter
) -> None:
    _run(store_exporter, "Plan_Trip", service="travel", minute=0, duration_ms=300)
    _run(store_exporter, "book hotel", service="travel", minute=1, duration_ms=900, failed=True)
    _run(store_exporter, "summarize 100%", service="notes", minute=2, duration_ms=50)
    _run(store_exporter, "search", service="notes", minute=3, duration_ms=10, root=False)

    # a run whose root never arrived has no name yet
    assert _names(storage)[:3] == [None, "summarize 100%", "book hotel"]
    assert _names(storage, status="failed") == ["book hotel"]
    assert _names(storage, service="travel") == ["book hotel", "Plan_Trip"]
    assert _names(storage, text="plan_") == ["Plan_Trip"]  # case-insensitive
    assert _names(storage, text="100%") == ["summarize 100%"]  # % is a plain character
    assert _names(storage, text="_") == ["Plan_Trip"]  # so is _
    longest_first = ["book hotel", "Plan_Trip", "summarize 100%", None]
    assert _names(storage, sort="duration") == longest_first
    assert _names(storage, sort="duration", descending=False) == longest_first[::-1]
    # no run has a cost (no LLM call): they tie, newest first
    assert _names(storage, sort="cost", descending=False) == _names(storage)
    assert _names(storage, limit=2, offset=1) == ["summarize 100%", "book hotel"]
    assert _names(storage, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)) == [
        "book hotel"
    ]
    trace_id = storage.tenant("default").find_runs(RunQuery(text="hotel"))[0].trace_id
    assert _names(storage, text=trace_id[4:20].upper()) == ["book hotel"]


def test_activity_counts_runs_per_bucket_aligned_on_the_epoch(
    storage: Storage, store_exporter: ErrorLogSpanExporter
) -> None:
    _run(store_exporter, "a", service="s", minute=0, duration_ms=5)
    _run(store_exporter, "b", service="s", minute=1, duration_ms=5, failed=True)
    _run(store_exporter, "c", service="s", minute=7, duration_ms=5)
    _run(store_exporter, "d", service="s", minute=8, duration_ms=5, root=False)
    store = storage.tenant("default")
    buckets = store.activity(T0 - timedelta(hours=1), T0 + timedelta(hours=1), timedelta(minutes=5))
    assert [(b.start, b.runs, b.finished, b.failed) for b in buckets] == [
        (T0, 2, 2, 1),
        (T0 + timedelta(minutes=5), 2, 1, 0),
    ]
    assert (
        store.activity(T0 + timedelta(minutes=9), T0 + timedelta(hours=1), timedelta(hours=1)) == []
    )


def _report(run_id: uuid.UUID, when: datetime, cause: str) -> Report:
    return Report(
        id=uuid.uuid4(),
        run_id=run_id,
        root_cause_analysis=cause,
        recommended_actions=({"priority": 1, "action": "retry"},),
        resume_step=None,
        confidence_score=0.5,
        error_category="dependency",
        llm_provider="rules",
        llm_model=None,
        prompt_tokens=None,
        completion_tokens=None,
        latency_ms=None,
        cost_usd=None,
        fingerprint=None,
        reused_from=None,
        fallback_reason="no LLM configured",
        created_at=when,
    )


def test_latest_reports_are_the_newest_of_any_run(
    storage: Storage, store_exporter: ErrorLogSpanExporter
) -> None:
    _run(store_exporter, "x", service="s", minute=0, duration_ms=5, failed=True)
    _run(store_exporter, "y", service="s", minute=1, duration_ms=5, failed=True)
    store = storage.tenant("default")
    x, y = (r.id for r in store.find_runs(RunQuery(sort="name", descending=False)))
    for i, (run, cause) in enumerate([(x, "first"), (y, "second"), (x, "third")]):
        store.insert_report(_report(run, T0 + timedelta(minutes=i), cause))
    assert [r.root_cause_analysis for r in store.latest_reports(2)] == ["third", "second"]
    assert store.latest_reports(2)[0].fallback_reason == "no LLM configured"


def test_a_report_of_a_run_with_two_error_shapes_is_the_latest_diagnosis_of_both_groups(
    storage: Storage, store_exporter: ErrorLogSpanExporter
) -> None:
    start = int(T0.timestamp() * 1e9)
    spans = [
        make_span(
            f"execute_tool {tool}",
            trace_id=0xAB,
            start_ns=start + i * MS,
            status=StatusCode.ERROR,
            events=[exception_event("ValueError", f"{tool} broke")],
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
        )
        for i, tool in enumerate(("search", "book"))
    ]
    store_exporter.export(spans)
    store = storage.tenant("default")
    (run,) = store.find_runs(RunQuery())
    store.insert_report(_report(run.id, T0 + timedelta(minutes=1), "both broke"))
    groups = store.error_groups(since=T0 - timedelta(hours=1))
    assert len(groups) == 2
    assert [g.latest_diagnosis.root_cause_analysis for g in groups if g.latest_diagnosis] == [
        "both broke",
        "both broke",
    ]
