"""Seed a store the way an app does: real SDK spans through the real exporter.

:func:`agent_run` emits one run (workflow -> agent -> LLM call -> tools) with GenAI
attributes and chosen timings through an OTel ``Tracer``; :func:`seed_fleet` writes the
small fleet the CLI and alert tests read, and returns what they should expect.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, Tracer

from otel_diag.config import Settings
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store import open_storage

MS = 1_000_000
SECRET = "hunter2-secret"


@dataclass
class Expected:
    """What the seeded fleet contains, for assertions."""

    runs: dict[str, str] = field(default_factory=dict)  # label -> run id (UUID string)
    traces: dict[str, str] = field(default_factory=dict)  # label -> trace id (hex)


def _fail(span: Any, exc: BaseException, at: int) -> None:
    span.record_exception(exc, timestamp=at)
    span.set_status(Status(StatusCode.ERROR, str(exc)))


def agent_run(
    tracer: Tracer,
    *,
    run_id: str,
    agent: str,
    start_ns: int,
    duration_ms: float,
    model: str = "gpt-4o-mini",
    input_tokens: int = 1000,
    output_tokens: int = 100,
    reported_cost: float | None = None,
    tool_failures: int = 0,
    fail_run: bool = False,
    tool_error: BaseException | None = None,
) -> str:
    """One run; returns its trace id. Tool failures are retries of ``search_flights``."""
    end_ns = start_ns + int(duration_ms * MS)
    root = tracer.start_span(
        "invoke_workflow trip",
        start_time=start_ns,
        attributes={"otel_diag.run.id": run_id, "gen_ai.operation.name": "invoke_workflow"},
    )
    ctx = trace.set_span_in_context(root)
    agent_span = tracer.start_span(
        f"invoke_agent {agent}",
        context=ctx,
        start_time=start_ns + 1,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent},
    )
    actx = trace.set_span_in_context(agent_span)
    llm_attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    if reported_cost is not None:
        llm_attrs["gen_ai.usage.cost"] = reported_cost
    chat = tracer.start_span(
        f"chat {model}", context=actx, start_time=start_ns + 2, attributes=llm_attrs
    )
    chat.end(end_time=start_ns + 3 * MS)
    error: BaseException | None = None
    for attempt in range(1, tool_failures + 1):
        at = start_ns + (4 + attempt) * MS
        tool = tracer.start_span(
            "execute_tool search_flights",
            context=actx,
            start_time=at,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "search_flights",
                "otel_diag.step.attempt": attempt,
            },
        )
        error = tool_error or ConnectionError(
            f"flight API unreachable: https://agent:{SECRET}@flights.internal/v2 timed out"
        )
        _fail(tool, error, at + MS // 2)
        tool.end(end_time=at + MS)
    if fail_run and error is not None:
        _fail(agent_span, error, end_ns - 2)
    agent_span.end(end_time=end_ns - 1)
    if fail_run and error is not None:
        _fail(root, error, end_ns - 1)
    root.end(end_time=end_ns)
    return format(root.get_span_context().trace_id, "032x")


def seed_fleet(tracer: Tracer, now_ns: int | None = None) -> Expected:
    """Five runs: two agents, one unpriced model, one disagreeing reported cost, one old run.

    planner:    ok-fast 100 ms, failed 300 ms (3 tool failures), old (10 days ago) ok
    researcher: failed 1000 ms (unpriced model, 1 tool failure), ok 2000 ms (reported $0.5)
    """
    now_ns = now_ns or time.time_ns()
    base = now_ns - 120 * 1_000_000_000  # two minutes ago: inside the default 15m window
    exp = Expected()
    specs: list[tuple[str, dict[str, Any]]] = [
        ("planner_ok", {"agent": "planner", "duration_ms": 100}),
        (
            "planner_failed",
            {"agent": "planner", "duration_ms": 300, "tool_failures": 3, "fail_run": True},
        ),
        (
            "researcher_failed",
            {
                "agent": "researcher",
                "duration_ms": 1000,
                "model": "acme-local-7b",
                "input_tokens": 2000,
                "output_tokens": 200,
                "tool_failures": 1,
                "fail_run": True,
                "tool_error": ValueError("search_flights: 'date' must be ISO 8601"),
            },
        ),
        ("researcher_ok", {"agent": "researcher", "duration_ms": 2000, "reported_cost": 0.5}),
    ]
    for i, (label, spec) in enumerate(specs):
        run_id = str(uuid.uuid4())
        exp.runs[label] = run_id
        exp.traces[label] = agent_run(
            tracer, run_id=run_id, start_ns=base + i * 10_000 * MS, **spec
        )
    old_id = str(uuid.uuid4())
    exp.runs["planner_old"] = old_id
    exp.traces["planner_old"] = agent_run(
        tracer,
        run_id=old_id,
        agent="planner",
        start_ns=now_ns - 10 * 86400 * 1_000_000_000,
        duration_ms=50,
    )
    return exp


@contextmanager
def exporting_tracer(url: str, settings: Settings) -> Iterator[Tracer]:
    """A tracer whose spans go synchronously through a real exporter into ``url``."""
    storage = open_storage(settings, url)
    exporter = ErrorLogSpanExporter(manager=storage, settings=settings)
    provider = TracerProvider(resource=Resource.create({"service.name": "cli-test-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider.get_tracer("otel-diag-cli-tests")
    finally:
        provider.shutdown()
        storage.dispose()
