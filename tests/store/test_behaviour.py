"""The storage port's behaviour, the same on SQLite, PostgreSQL and MongoDB (FerretDB).

Every test takes ``storage`` (one fresh store per backend, see tests/conftest.py) and speaks
only the port: what one backend answers, the others answer too. Spans come from the real
SDK (a tracer into an in-memory exporter), as an app's workflow -> agent -> chat/tool
nesting produces them: children end, and are exported, before their parents, and only the
root names the run.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_diag.config import load_settings
from otel_diag.projection.ids import run_uuid
from otel_diag.rows import Report, Run, to_json
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.store import open_storage
from otel_diag.store.port import ExportFilter, ExportTable, RunQuery, Storage
from otel_diag.store.sink import SpanSink
from otel_diag.tenants import InvalidTenantError

NOW = datetime.now(UTC)


def agent_run(run_key: str, *, fail: bool = True, model: str = "gpt-4o-mini") -> list[ReadableSpan]:
    """workflow -> agent -> chat + tool (+ a chat on a model without a price); the tool
    fails twice and is retried, the second failure escapes. Only the root names the run."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("behaviour-tests")
    root = {"otel_diag.run.id": run_key, "gen_ai.operation.name": "invoke_workflow"}
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "buyer"}

    def chat(name: str, tokens: int) -> None:
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": name,
            "gen_ai.usage.input_tokens": tokens,
            "gen_ai.usage.output_tokens": tokens // 10,
        }
        with tracer.start_as_current_span(f"chat {name}", attributes=attrs):
            pass

    try:
        with (
            tracer.start_as_current_span("invoke_workflow checkout", attributes=root),
            tracer.start_as_current_span("invoke_agent buyer", attributes=agent),
        ):
            chat(model, 1000)
            chat("house-model-x", 500)
            for attempt in (1, 2):
                try:
                    with tracer.start_as_current_span(
                        "execute_tool pay",
                        attributes={
                            "gen_ai.operation.name": "execute_tool",
                            "gen_ai.tool.name": "pay",
                            "otel_diag.step.attempt": attempt,
                        },
                    ):
                        if fail:
                            raise TimeoutError(f"card service timed out after {attempt}0 s")
                except TimeoutError:
                    if attempt == 2:
                        raise
    except TimeoutError:
        pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def write(storage: Storage, spans: Sequence[ReadableSpan]) -> None:
    exporter = ErrorLogSpanExporter(manager=storage, settings=storage.settings)
    exporter.export(list(spans))


def snapshot(storage: Storage, run_key: str) -> dict[str, Any]:
    """Everything the port says about one run, minus the time the write happened."""
    store = storage.tenant()
    rid = run_uuid(run_key, "")
    run = store.run(rid)
    assert run is not None
    return {
        "run": {k: v for k, v in to_json(run).items() if k != "last_span_at"},
        "steps": [to_json(s) for s in store.steps(rid)],
        "errors": [to_json(e) for e in store.errors(rid)],
        "summary": to_json(store.error_summary(rid)),
    }


@pytest.fixture
def sqlite_twin(tmp_path: Path, _sqlite_template: Path) -> Any:
    """A second store on SQLite, to compare another backend's answers with."""
    path = tmp_path / "twin.db"
    shutil.copyfile(_sqlite_template, path)
    url = f"sqlite:///{path}"
    opened = open_storage(load_settings(database_url=url), url)
    yield opened
    opened.dispose()


def test_spans_in_any_order_and_batching_converge_to_the_rows_sqlite_stores_in_one_batch(
    storage: Storage, sqlite_twin: Storage
) -> None:
    spans = agent_run("converge")
    write(sqlite_twin, spans)
    rng = random.Random(5)
    order = list(spans)
    rng.shuffle(order)

    for span in order:  # one request per span, in a random order
        write(storage, [span])

    assert snapshot(storage, "converge") == snapshot(sqlite_twin, "converge")
    for table in ("runs", "steps", "errors"):  # and the export files are the same
        layout = storage.tenant().export_layout(table, trace_url=True)
        pairs = zip(exported(storage, table), exported(sqlite_twin, table), strict=True)
        differ = [
            (c, x, y)
            for a, b in pairs
            for c, x, y in zip(layout.columns, a, b, strict=True)
            # JSON text compares as objects: PostgreSQL's jsonb orders keys its own way
            if (json.loads(x) != json.loads(y) if c in layout.json_columns else x != y)
        ]
        assert differ == [], table


def test_two_writers_of_one_trace_at_once_converge_to_the_same_rows(
    storage: Storage, sqlite_twin: Storage
) -> None:
    spans = agent_run("racing")
    write(sqlite_twin, spans)
    halves = [spans[0::2], spans[1::2]]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def send(part: list[ReadableSpan]) -> None:
        barrier.wait()
        try:
            for span in part:
                write(storage, [span])
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert snapshot(storage, "racing") == snapshot(sqlite_twin, "racing")


def exported(storage: Storage, table: ExportTable) -> list[list[Any]]:
    store = storage.tenant()
    batches = store.export_batches(table, ExportFilter(), trace_url_template="t/{trace_id}")
    return sorted(([*row] for batch in batches for row in batch), key=str)


def test_re_sending_spans_changes_nothing_and_the_counts_stay_exact(storage: Storage) -> None:
    spans = agent_run("resend")
    write(storage, spans)
    first = snapshot(storage, "resend")
    counts = {
        t: storage.tenant().export_count(t, ExportFilter()) for t in ("runs", "steps", "errors")
    }

    write(storage, spans)
    write(storage, spans[::-1])
    for span in spans:
        write(storage, [span])

    assert snapshot(storage, "resend") == first
    assert {t: storage.tenant().export_count(t, ExportFilter()) for t in counts} == counts
    run = first["run"]
    assert (run["step_count"], run["llm_calls"], run["tool_calls"], run["error_count"]) == (
        5,
        2,
        2,
        2,
    )
    assert (run["status"], run["agent_name"], run["name"]) == (
        "failed",
        "buyer",
        "invoke_workflow checkout",
    )
    assert [e["propagated_to"] for e in first["errors"]] == [
        None,
        ["buyer", "invoke_workflow checkout"],
    ]


def test_children_stored_before_their_root_join_the_run_the_root_names(storage: Storage) -> None:
    spans = agent_run("late-root")
    children, root = spans[:-1], spans[-1:]
    trace_id = f"{spans[0].context.trace_id:032x}"

    write(storage, children)
    placeholder = storage.tenant().resolve_run(trace_id)
    write(storage, root)

    store = storage.tenant()
    assert placeholder == uuid.UUID(hex=trace_id)  # the trace's run until the root came
    assert store.resolve_run(trace_id) == run_uuid("late-root", "")
    assert store.run(uuid.UUID(hex=trace_id)) is None  # merged away
    assert [r.id for r in store.runs()] == [run_uuid("late-root", "")]
    assert store.resolve_run("late-root") == run_uuid("late-root", "")
    assert store.resolve_run(str(run_uuid("late-root", ""))[:8]) == run_uuid("late-root", "")


def test_tenants_are_apart_and_a_bad_tenant_id_is_a_clear_error(storage: Storage) -> None:
    sink = SpanSink(storage)
    records = [r for r in map(from_readable_span, agent_run("t1")) if r]

    sink.write(records, tenant="acme")
    sink.write([r for r in map(from_readable_span, agent_run("t2")) if r], tenant="acme")
    sink.write(records, tenant="globex")

    assert len(storage.tenant("acme").runs()) == 2
    assert len(storage.tenant("globex").runs()) == 1
    assert storage.tenant().runs() == []
    assert {"acme", "globex"} <= set(storage.discover_tenants())
    for bad in ("Acme", "../etc", "a" * 49, "x.y"):
        with pytest.raises(InvalidTenantError):
            storage.tenant(bad)


def _failed_runs(storage: Storage, n: int) -> list[uuid.UUID]:
    for i in range(n):
        write(storage, agent_run(f"queue-{i}"))
    return [run_uuid(f"queue-{i}", "") for i in range(n)]


def _report(run_id: uuid.UUID, *, provider: str = "openai", cost: float = 0.01) -> Report:
    return Report(
        id=uuid.uuid4(),
        run_id=run_id,
        root_cause_analysis="the card service timed out",
        recommended_actions=({"action": "raise the timeout", "priority": "high"},),
        resume_step="pay",
        confidence_score=0.8,
        error_category="timeout",
        llm_provider=provider,
        llm_model="gpt-4o-mini",
        prompt_tokens=100,
        completion_tokens=20,
        latency_ms=12.5,
        cost_usd=cost,
        fingerprint="fp-1",
        reused_from=None,
        fallback_reason=None,
        created_at=datetime.now(UTC),
    )


def test_each_ready_run_is_claimed_by_exactly_one_of_two_racing_workers(storage: Storage) -> None:
    runs = _failed_runs(storage, 4)
    store = storage.tenant()
    later = datetime.now(UTC) + timedelta(seconds=10)
    assert store.queue_depth(later, 5) == {"ready": 4, "waiting": 0, "claimed": 0}
    taken: dict[str, list[uuid.UUID]] = {}
    barrier = threading.Barrier(2)

    def work(worker: str) -> None:
        barrier.wait()
        claims = storage.tenant().claim_ready(
            worker_id=worker, now=later, decision_wait=5, lease=60, limit=10
        )
        taken[worker] = [c.run_id for c in claims]

    threads = [threading.Thread(target=work, args=(w,)) for w in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(taken["w1"] + taken["w2"], key=str) == sorted(runs, key=str)
    assert store.queue_depth(later, 5)["claimed"] == 4
    assert store.claim_run(runs[0], worker_id="w3", now=later, lease=60) is None  # leased


def test_a_claim_stores_its_report_only_while_it_is_still_the_callers(storage: Storage) -> None:
    (run_id,) = _failed_runs(storage, 1)
    store = storage.tenant()
    t0 = datetime.now(UTC) + timedelta(seconds=10)
    (mine,) = store.claim_ready(worker_id="w1", now=t0, decision_wait=5, lease=30, limit=5)
    # The lease runs out; another worker takes the run over.
    t1 = t0 + timedelta(seconds=31)
    (theirs,) = store.claim_ready(worker_id="w2", now=t1, decision_wait=5, lease=30, limit=5)

    assert not store.complete(mine, _report(run_id), fingerprint="fp-1", now=t1)
    assert store.reports(run_id) == []
    report = _report(run_id)
    assert store.complete(theirs, report, fingerprint="fp-1", now=t1)
    assert store.reports(run_id) == [report]
    assert store.report(report.id) == report
    assert store.latest_reports(1) == [report]
    run = store.run(run_id)
    assert run is not None and (run.diagnosis_state, run.diagnosis_fingerprint) == ("done", "fp-1")
    assert store.find_reusable("fp-1", t0 - timedelta(hours=1)) == report
    assert store.spend_since(t0 - timedelta(hours=1)) == pytest.approx(0.01)
    assert store.next_ready_at(5) is None
    assert store.release([theirs]) == 0  # completed: nothing to give back


def test_released_and_parked_claims(storage: Storage) -> None:
    first, second = _failed_runs(storage, 2)
    store = storage.tenant()
    now = datetime.now(UTC) + timedelta(seconds=10)
    claims = store.claim_ready(worker_id="w", now=now, decision_wait=5, lease=60, limit=5)
    by_run = {c.run_id: c for c in claims}

    assert store.release([by_run[first]]) == 1
    assert store.mark_failed(by_run[second], now)

    assert store.queue_depth(now, 5) == {"ready": 1, "waiting": 0, "claimed": 0}
    assert store.diagnosis_outcomes(now - timedelta(hours=1)).failed_runs == 1
    assert store.next_ready_at(5) is not None
    assert store.gauges().diagnosis_states == {"pending": 1, "error": 1}


def test_reports_count_what_was_stored(storage: Storage) -> None:
    _failed_runs(storage, 2)
    write(storage, agent_run("fine", fail=False))
    store = storage.tenant()
    since = NOW - timedelta(hours=1)

    stats = store.run_stats(since, None)
    cost = store.cost_breakdown(since, None)
    frame = store.monitor_snapshot(timedelta(hours=1), datetime.now(UTC))

    totals = stats.totals
    assert (totals.runs, totals.failed, totals.running, totals.errors) == (3, 2, 0, 4)
    assert totals.failure_rate == pytest.approx(2 / 3, abs=1e-4)
    assert [a.agent for a in stats.agents] == ["buyer"]
    assert stats.errors_by_category[0].errors == 4
    assert cost.total.calls == 6
    assert {m.model for m in cost.by_model} == {"gpt-4o-mini", "house-model-x"}
    assert [u.model for u in cost.unpriced] == ["house-model-x"]
    assert cost.by_agent[0].runs == 3
    assert (frame.runs, frame.failed, frame.pending_diagnoses) == (3, 2, 2)
    assert len(frame.latest_errors) == 4
    assert [m.model for m in frame.models] == ["gpt-4o-mini", "house-model-x"]  # unpriced last
    assert store.finished_runs(since) == (3, 2)
    assert store.cost_since(since) == pytest.approx(cost.total.cost_usd)
    assert [m.model for m in store.unpriced_models(since)] == ["house-model-x"]
    assert [r.name for r in store.costly_runs(since, 0.0)] == ["invoke_workflow checkout"] * 3
    assert [r.name for r in store.recent_failed_runs(since)] == ["invoke_workflow checkout"] * 2
    failure = store.failure_cost(since, None)
    assert (failure.failed_runs.count, failure.retried_attempts.count) == (2, 2)
    buckets = store.activity(since, datetime.now(UTC) + timedelta(minutes=1), timedelta(hours=1))
    assert sum(b.runs for b in buckets) == 3 and sum(b.failed for b in buckets) == 2
    assert store.gauges().runs_open == 0


def test_the_run_list_filters_and_sorts(storage: Storage) -> None:
    _failed_runs(storage, 2)
    write(storage, agent_run("fine", fail=False))
    store = storage.tenant()

    failed = store.find_runs(RunQuery(status="failed"))
    by_errors = store.find_runs(RunQuery(sort="errors", descending=False))
    text = store.find_runs(RunQuery(text="CHECKOUT", limit=2))

    assert {r.status for r in failed} == {"failed"} and len(failed) == 2
    assert [r.error_count for r in by_errors] == [0, 2, 2]
    assert len(text) == 2
    assert store.runs(status="ok", agent="buyer") == store.find_runs(RunQuery(status="ok"))


def test_the_export_renders_ids_times_and_json_alike(storage: Storage) -> None:
    (run_id,) = _failed_runs(storage, 1)
    store = storage.tenant()
    layout = store.export_layout("errors", trace_url=True)

    rows = [
        row
        for batch in store.export_batches(
            "errors",
            ExportFilter(run_id=run_id),
            batch_size=1,
            trace_url_template="http://jaeger/trace/{trace_id}",
        )
        for row in batch
    ]

    assert layout.columns[-1] == "trace_url" and layout.json_columns == {"context"}
    assert len(rows) == 2 == store.export_count("errors", ExportFilter(run_id=run_id))
    row = dict(zip(layout.columns, rows[0], strict=True))
    assert row["run_id"] == str(run_id)
    assert row["created_at"].endswith("+00:00") and len(row["created_at"]) == 32
    assert row["context"].startswith("{") and row["trace_url"].endswith(row["trace_id"])
    assert store.export_count("runs", ExportFilter(status="ok")) == 0
    assert store.export_count("steps", ExportFilter(limit=3)) == 3


def test_readiness_and_layout_version_of_a_new_tenant(storage: Storage) -> None:
    store = storage.tenant("fresh")

    assert store.write_readiness() == "ok"
    assert store.schema_revision()
    assert storage.repair("fresh")
    assert "fresh" in storage.tenants()


def test_runs_read_back_as_typed_rows(storage: Storage) -> None:
    (run_id,) = _failed_runs(storage, 1)
    run = storage.tenant().run(run_id)

    assert isinstance(run, Run)
    assert run.started_at.tzinfo is not None and run.ended_at is not None
    assert run.duration_ms is not None and run.duration_ms > 0
    assert run.cost_usd is not None and run.cost_usd > 0
    assert run.unpriced_tokens == 550
