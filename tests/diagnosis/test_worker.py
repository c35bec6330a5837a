"""The batch processor: ready runs, claims that survive crashes, reuse, spend, tenants.

Every test runs on SQLite and on PostgreSQL; runs are seeded through the real exporter and
the LLM is the loopback fake, so "no LLM request" is counted at the provider's door.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, Tracer
from sqlalchemy import event

from otel_diag.config import load_settings
from otel_diag.diagnosis.reports import rules_report
from otel_diag.diagnosis.schema import Diagnosis
from otel_diag.diagnosis.service import utcnow
from otel_diag.diagnosis.worker import DiagnosisWorker
from otel_diag.rows import DiagnosisState
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.conftest import (
    FLIGHTS,
    make_settings,
    poll,
    report_counts,
    run_uuid,
    valid_answer,
)
from tests.diagnosis.scenarios import long_run, seed
from tests.diagnosis.scenarios.spans import Err, Node, agent, tool, workflow
from tests.fakes.openai_server import FakeOpenAI, Reply


def distinct_failure(i: int) -> Node:
    """A failed run whose error shape is unique to ``i`` (so no two runs share a diagnosis)."""
    return workflow(
        f"job-{i}",
        [agent("worker", [tool(f"step_{i}", fail=Err("ConnectionError", f"host-{i} refused"))])],
    )


def test_a_run_is_diagnosed_only_after_the_decision_wait(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, seed_run: Callable[..., str]
) -> None:
    run_id = run_uuid(manager, seed_run())
    waiting = DiagnosisWorker(manager, make_settings(db_url, fake_llm, decision_wait=30))
    assert waiting.run_once() == 0
    ready_at = waiting.next_ready_at()
    assert ready_at is not None and timedelta(seconds=25) < ready_at - utcnow() <= timedelta(
        seconds=30
    )
    assert manager.tenant().queue_depth(utcnow(), 30) == {"ready": 0, "waiting": 1, "claimed": 0}

    worker = DiagnosisWorker(manager, make_settings(db_url, fake_llm, decision_wait=0))
    assert worker.run_once() == 1
    assert report_counts(manager) == {run_id: 1}
    assert worker.run_once() == 0  # done: nothing left to claim
    run = manager.tenant().run(uuid.UUID(run_id))
    assert run is not None and run.diagnosis_state == DiagnosisState.DONE
    assert run.diagnosis_fingerprint and run.diagnosed_at


def test_a_run_whose_root_span_has_not_arrived_waits_longer(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, tracer: Tracer
) -> None:
    """Children end first: a rootless part of a trace is not diagnosed on the short wait."""
    remote_parent = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    with (
        trace.use_span(NonRecordingSpan(remote_parent)),
        tracer.start_as_current_span("execute_tool lookup", attributes={"otel_diag.run.id": "r"}),
    ):
        trace.get_current_span().record_exception(ConnectionError("down"))
        trace.get_current_span().set_status(trace.StatusCode.ERROR)
    worker = DiagnosisWorker(manager, make_settings(db_url, fake_llm))
    assert worker.run_once() == 0
    ready_at = worker.next_ready_at()
    assert ready_at is not None and ready_at - utcnow() > timedelta(seconds=50)
    claims = manager.tenant().claim_ready(
        worker_id="w", now=utcnow(), decision_wait=0, lease=60, limit=5, orphan_wait=0
    )
    assert [str(c.run_id) for c in claims] == [run_uuid(manager, "r")]


def test_a_started_worker_diagnoses_new_failures_until_stopped(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, seed_run: Callable[..., str]
) -> None:
    worker = DiagnosisWorker(manager, make_settings(db_url, fake_llm), poll_interval=0.05)
    assert worker.start() and worker.running
    try:
        run_id = run_uuid(manager, seed_run())
        assert poll(lambda: report_counts(manager).get(run_id) == 1)
    finally:
        assert worker.stop(timeout=5)
    assert not worker.running
    assert worker.stats["stored"] == 1 and worker.stats["llm"] == 1


def test_stopping_a_worker_mid_batch_loses_and_duplicates_nothing(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, tracer: Tracer
) -> None:
    run_ids = [run_uuid(manager, seed(tracer, distinct_failure(i))) for i in range(6)]
    fake_llm.default = Reply(content=valid_answer(resume_step=None), delay=0.1)
    settings = make_settings(db_url, fake_llm, diagnosis_concurrency=1)
    first = DiagnosisWorker(manager, settings, batch_size=6, poll_interval=0.05)
    first.start()
    assert poll(lambda: len(report_counts(manager)) >= 1)
    first.stop(timeout=5)
    done_by_first = report_counts(manager)
    assert 1 <= len(done_by_first) < 6  # stopped mid-batch

    second = DiagnosisWorker(manager, settings)
    assert second.drain() == 6 - len(done_by_first)
    assert report_counts(manager) == {r: 1 for r in run_ids}


def test_runs_claimed_by_a_dead_worker_are_taken_over_once_the_lease_expires(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, tracer: Tracer
) -> None:
    run_ids = [run_uuid(manager, seed(tracer, distinct_failure(i))) for i in range(3)]
    store = manager.tenant()
    dead = store.claim_ready(worker_id="dead", now=utcnow(), decision_wait=0, lease=2.0, limit=10)
    assert sorted(str(c.run_id) for c in dead) == sorted(run_ids)

    survivor = DiagnosisWorker(manager, make_settings(db_url, fake_llm), lease=2.0)
    assert survivor.run_once() == 0  # the claims are still live (a 2 s lease: robust under load)
    assert poll(lambda: survivor.drain() == 3, timeout=10, interval=0.1)
    assert report_counts(manager) == {r: 1 for r in run_ids}
    # The dead worker comes back and tries to store its result: refused, nothing stored.
    late = rules_report(
        dead[0].run_id,
        Diagnosis("late", (), None, 0.1),
        reason="late",
        fingerprint=None,
        now=utcnow(),
        latency_ms=0.0,
    )
    assert not store.complete(dead[0], late, fingerprint=None, now=utcnow())
    assert report_counts(manager) == {r: 1 for r in run_ids}


def test_two_workers_sharing_a_database_never_diagnose_the_same_run(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, tracer: Tracer
) -> None:
    run_ids = [run_uuid(manager, seed(tracer, distinct_failure(i))) for i in range(12)]
    fake_llm.default = Reply(content=valid_answer(resume_step=None), delay=0.02)
    settings = make_settings(db_url, fake_llm, diagnosis_concurrency=3)
    managers = [TenantDBManager(db_url, settings) for _ in range(2)]  # separate pools
    workers = [DiagnosisWorker(m, settings, batch_size=2) for m in managers]
    barrier = threading.Barrier(2)
    stored: list[int] = []

    def work(worker: DiagnosisWorker) -> None:
        barrier.wait()
        stored.append(worker.drain())

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for m in managers:
        m.dispose()

    assert sum(stored) == 12
    assert report_counts(manager) == {r: 1 for r in run_ids}
    assert len(fake_llm.requests) == 12  # no run was sent to the LLM twice
    prompts = [r.body["messages"][1]["content"] for r in fake_llm.requests]
    assert len(set(prompts)) == 12


def test_the_same_error_fingerprints_reuse_a_recent_diagnosis(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, seed_run: Callable[..., str]
) -> None:
    worker = DiagnosisWorker(manager, make_settings(db_url, fake_llm, diagnosis_ttl=600))
    first = run_uuid(manager, seed_run())
    worker.run_once()
    second = run_uuid(manager, seed_run())  # another run failing the same way
    worker.run_once()

    assert len(fake_llm.requests) == 1  # the second run cost no LLM request
    (original,) = manager.tenant().reports(uuid.UUID(first))
    (copy,) = manager.tenant().reports(uuid.UUID(second))
    assert original is not None and copy is not None
    assert copy.reused_from == original.id
    assert copy.root_cause_analysis == original.root_cause_analysis
    assert copy.fingerprint == original.fingerprint
    assert copy.cost_usd == 0.0 and copy.prompt_tokens is None
    assert worker.stats["reused"] == 1

    no_reuse = DiagnosisWorker(manager, make_settings(db_url, fake_llm, diagnosis_ttl=0))
    seed_run()
    no_reuse.run_once()
    assert len(fake_llm.requests) == 2


def test_a_late_span_with_new_errors_reopens_a_diagnosed_run(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, tracer: Tracer
) -> None:
    worker = DiagnosisWorker(manager, make_settings(db_url, fake_llm, diagnosis_ttl=0))
    run_key = seed(tracer, FLIGHTS.root)
    run_id = run_uuid(manager, run_key)
    assert worker.run_once() == 1

    with tracer.start_as_current_span("late ok", attributes={"otel_diag.run.id": run_key}):
        pass
    assert worker.run_once() == 0  # a late span without new errors changes nothing

    late = workflow("trip-planner", [tool("notify_user", fail=Err("TimeoutError", "smtp slow"))])
    seed(tracer, late, run_key)
    assert worker.run_once() == 1
    assert report_counts(manager) == {run_id: 2}


def test_rules_mode_never_calls_the_llm_and_off_mode_diagnoses_nothing(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, seed_run: Callable[..., str]
) -> None:
    run_id = run_uuid(manager, seed_run())
    off = DiagnosisWorker(manager, make_settings(db_url, fake_llm, diagnosis="off"))
    assert off.start() is False and off.run_once() == 0
    assert report_counts(manager) == {}

    rules = DiagnosisWorker(manager, make_settings(db_url, fake_llm, diagnosis="rules"))
    assert rules.run_once() == 1
    (report,) = manager.tenant().reports(uuid.UUID(run_id))
    assert report.llm_provider == "rules" and report.fallback_reason == "mode_rules"
    assert report.resume_step == "search_flights"
    assert fake_llm.requests == []


def test_the_hourly_spend_cap_sends_further_runs_to_the_rules(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, tracer: Tracer
) -> None:
    fake_llm.default = Reply(content=valid_answer(resume_step=None))
    settings = make_settings(db_url, fake_llm, spend_cap_usd_per_hour=1e-9, diagnosis_ttl=0)
    worker = DiagnosisWorker(manager, settings, batch_size=1)
    seed(tracer, distinct_failure(1))
    assert worker.run_once() == 1  # nothing spent yet: the LLM answers (and costs > 0)
    seed(tracer, distinct_failure(2))
    assert worker.run_once() == 1
    assert len(fake_llm.requests) == 1
    spent = manager.tenant().spend_since(utcnow() - timedelta(hours=1))
    assert spent > 1e-9
    assert worker.stats["llm"] == 1 and worker.stats["rules"] == 1, worker.stats


def test_a_worker_serves_every_tenant_found_on_storage(db_url: str) -> None:
    settings = make_settings(db_url, None, diagnosis="rules")
    writer = TenantDBManager(db_url, settings)
    exporter = ErrorLogSpanExporter(manager=writer, settings=load_settings(tenant="acme"))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run_key = seed(provider.get_tracer("t"), long_run(8))
    provider.shutdown()
    writer.dispose()

    fresh = TenantDBManager(db_url, settings)  # has never opened the tenant
    try:
        assert fresh.discover_tenants() == ["default", "acme"]
        assert DiagnosisWorker(fresh, settings).run_once() == 1
        assert report_counts(fresh, "acme") == {run_uuid(fresh, run_key, "acme"): 1}
        assert report_counts(fresh, "default") == {}
    finally:
        fresh.dispose()


def test_the_workers_own_database_work_is_never_traced(
    db_url: str, manager: TenantDBManager, fake_llm: FakeOpenAI, seed_run: Callable[..., str]
) -> None:
    """Instrumentations (SQLAlchemy, httpx...) see suppression for every diagnosis query."""
    seed_run()
    seen: list[bool] = []

    def probe(*_args: object) -> None:
        seen.append(is_instrumentation_enabled())

    engine = manager.get_engine()
    event.listen(engine, "before_cursor_execute", probe)
    try:
        assert DiagnosisWorker(manager, make_settings(db_url, fake_llm)).run_once() == 1
    finally:
        event.remove(engine, "before_cursor_execute", probe)
    assert seen and not any(seen)
