"""Diagnosis quality and cost: rules accuracy, prompt size, ready-to-stored overhead.

In one run, on runs played through the real SDK tracer and exporter:

1. the rule-based fallback against the labelled scenarios (``tests/diagnosis/scenarios``):
   accuracy on category and resume step per category and overall, and the calibration of
   the confidence the rules state (per stated category, a reliability table, the expected
   calibration error; see ``tests/diagnosis/scenarios/evaluate.py``);
2. prompt tokens, counted with litellm's offline tokenizer for gpt-4o-mini: the median over
   the scenarios and a 50-step (and 200-step) run (target <= 2,000 for 50 steps);
3. the time from a run becoming ready (last span + OTEL_DIAG_DECISION_WAIT) to its report
   being stored by a running worker, minus the LLM request's own latency (the loopback
   fake LLM answers at once; target <= 200 ms), on SQLite and PostgreSQL; the rules-only
   diagnosis is the baseline measured alongside.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer

from otel_diag.config import Settings, load_settings
from otel_diag.diagnosis.llm import load_litellm, token_counter
from otel_diag.diagnosis.prompt import build_prompt
from otel_diag.diagnosis.worker import DiagnosisWorker
from otel_diag.error_collector import ErrorCollector
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from tests.bench.scratch import create_pg_database, drop_pg_database
from tests.diagnosis.conftest import valid_answer
from tests.diagnosis.scenarios import SCENARIOS, long_run, seed
from tests.diagnosis.scenarios.evaluate import evaluate, report
from tests.diagnosis.scenarios.spans import Err, Node, agent, tool, workflow
from tests.fakes.openai_server import FakeOpenAI, Reply

MODEL = "gpt-4o-mini"
OVERHEAD_RUNS = 10
DECISION_WAIT = 1.0


@contextmanager
def store(url: str, settings: Settings) -> Iterator[tuple[TenantDBManager, Tracer]]:
    manager = TenantDBManager(url, settings)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ErrorLogSpanExporter(manager=manager)))
    try:
        yield manager, provider.get_tracer("bench")
    finally:
        provider.shutdown()
        manager.dispose()


@contextmanager
def pg_database() -> Iterator[str | None]:
    try:
        name, url = create_pg_database()
    except Exception as exc:
        print(f"  PostgreSQL unavailable ({type(exc).__name__}); skipped")
        yield None
        return
    try:
        yield url
    finally:
        drop_pg_database(name)


def _context(manager: TenantDBManager, run_key: str) -> dict[str, Any]:
    context = ErrorCollector(manager=manager).build_diagnostic_context(run_key)
    assert context is not None
    return context


def quality_and_prompts(url: str) -> None:
    settings = load_settings(database_url=url)
    count = token_counter(MODEL)
    litellm = load_litellm()
    with store(url, settings) as (manager, tracer):
        outcomes = evaluate(manager, tracer)
        print(report(outcomes))
        prompt_tokens: list[int] = []
        for scenario in SCENARIOS:
            prompt = build_prompt(
                _context(manager, seed(tracer, scenario.root)), count_tokens=count
            )
            prompt_tokens.append(litellm.token_counter(model=MODEL, messages=prompt.messages))
        n = len(SCENARIOS)
        print(f"prompt tokens ({MODEL} tokenizer), target <= 2000 for a 50-step run:")
        print(
            f"  scenarios: median {statistics.median(prompt_tokens):.0f}, "
            f"max {max(prompt_tokens)} ({n} prompts)"
        )
        for size in (50, 200):
            context = _context(manager, seed(tracer, long_run(size)))
            for label, counter in (("model tokenizer", count), ("offline estimate", None)):
                prompt = (
                    build_prompt(context, count_tokens=counter)
                    if counter
                    else build_prompt(context)
                )
                tokens = litellm.token_counter(model=MODEL, messages=prompt.messages)
                print(
                    f"  {len(context['steps'])}-step run, budgeted with the {label}: "
                    f"{tokens} tokens (compaction level {prompt.level})"
                )


def _failure(i: int) -> Node:
    return workflow(
        f"bench-{i}",
        [agent("worker", [tool(f"call_{i}", fail=Err("ConnectionError", f"svc-{i} refused"))])],
    )


def _as_utc(stamp: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def overhead(url: str, label: str, mode: str, server: FakeOpenAI) -> list[float]:
    """Per run: stored - ready - LLM latency (ms), with a worker running as in ``serve``."""
    settings = load_settings(
        database_url=url,
        llm_model=f"openai/{MODEL}",
        llm_api_base=server.url,
        llm_api_key="bench",
        llm_retries=0,
        decision_wait=DECISION_WAIT,
        diagnosis=mode,
        diagnosis_ttl=0,
        spend_cap_usd_per_hour=0,
    )
    results: list[float] = []
    with store(url, settings) as (manager, tracer):
        worker = DiagnosisWorker(manager, settings, poll_interval=0.5)
        worker.start()
        time.sleep(3 if mode == "auto" else 0.2)  # litellm warm-up, as in a running server
        try:
            for i in range(OVERHEAD_RUNS):
                run_key = seed(tracer, _failure(i))
                deadline = time.monotonic() + 30
                tenant = manager.tenant()
                found = None
                run = None
                while not found and time.monotonic() < deadline:
                    time.sleep(0.01)
                    rid = tenant.resolve_run(run_key)
                    found = tenant.reports(rid, limit=1) if rid else None
                    run = tenant.run(rid) if rid else None
                assert found and run is not None, "no report within 30 s"
                assert run.last_span_at is not None and run.diagnosed_at is not None
                ready = _as_utc(run.last_span_at).timestamp() + DECISION_WAIT
                stored = _as_utc(run.diagnosed_at).timestamp()
                timing = None
                while timing is None and time.monotonic() < deadline:
                    # the worker records its timing just after the report is stored
                    timing = next(
                        (
                            t
                            for s in list(worker._services.values())
                            for t in list(s.timings)
                            if t.run_id == str(run.id)
                        ),
                        None,
                    )
                    time.sleep(0.005)
                assert timing is not None, "no timing recorded"
                # diagnosed_at is taken as the storing transaction starts: add its duration.
                results.append((stored - ready) * 1000 + timing.store_ms - timing.llm_ms)
        finally:
            worker.stop(5)
    llm_ms = [t.llm_ms for s in worker._services.values() for t in s.timings]
    print(
        f"  {label:10s} {mode:5s}: median {statistics.median(results):6.1f} ms, "
        f"max {max(results):6.1f} ms over {len(results)} runs"
        + (
            f" (LLM request itself: median {statistics.median(llm_ms):.1f} ms)"
            if mode == "auto"
            else ""
        )
    )
    return results


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with tempfile.TemporaryDirectory() as tmp:
        quality_and_prompts(f"sqlite:///{tmp}/quality.db")
    print(
        f"ready-to-stored overhead excluding LLM latency (decision wait {DECISION_WAIT}s, "
        "target <= 200 ms):"
    )
    with FakeOpenAI(default=Reply(content=valid_answer(resume_step=None))) as server:
        for mode in ("rules", "auto"):
            with tempfile.TemporaryDirectory() as tmp:
                overhead(f"sqlite:///{tmp}/overhead.db", "SQLite", mode, server)
            with pg_database() as url:
                if url is not None:
                    overhead(url, "PostgreSQL", mode, server)
