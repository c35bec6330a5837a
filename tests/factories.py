"""Build real SDK ``ReadableSpan`` objects directly, for cases the tracer API would refuse.

``ReadableSpan`` is what exporters receive; building it by hand lets a test hand the exporter
wrongly typed attributes, 1 MB messages or odd ids exactly as a buggy instrumentation
library could. Realistic traces come from :func:`agent_trace`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

RESOURCE = Resource.create({"service.name": "factory-svc"})


def new_trace_id(rng: random.Random | None = None) -> int:
    return (rng or random).getrandbits(128) or 1


def new_span_id(rng: random.Random | None = None) -> int:
    return (rng or random).getrandbits(64) or 1


def make_span(
    name: str = "span",
    *,
    trace_id: int | None = None,
    span_id: int | None = None,
    parent_id: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: list[Event] | None = None,
    status: StatusCode = StatusCode.UNSET,
    description: str | None = None,
    start_ns: int | None = None,
    duration_ns: int = 1_000_000,
    resource: Resource | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> ReadableSpan:
    trace_id = trace_id or new_trace_id()
    span_id = span_id or new_span_id()
    start = start_ns or time.time_ns()
    ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    parent = (
        SpanContext(trace_id, parent_id, is_remote=False, trace_flags=TraceFlags(1))
        if parent_id
        else None
    )
    return ReadableSpan(
        name=name,
        context=ctx,
        parent=parent,
        resource=resource or RESOURCE,
        attributes=dict(attributes or {}),
        events=events or [],
        kind=kind,
        status=Status(status, description) if status != StatusCode.UNSET else Status(status),
        start_time=start,
        end_time=start + duration_ns,
    )


def exception_event(error_type: str, message: str, stacktrace: str = "", **extra: Any) -> Event:
    attrs = {
        "exception.type": error_type,
        "exception.message": message,
        "exception.stacktrace": stacktrace,
        **extra,
    }
    return Event("exception", attrs)


STACK_LINE = (
    '  File "/srv/agent/tools/search.py", line {n}, in call_upstream\n    resp = client.get(url)\n'
)


def fake_stack(size: int = 2048) -> str:
    lines = ["Traceback (most recent call last):\n"]
    n = 10
    while sum(len(s) for s in lines) < size:
        lines.append(STACK_LINE.format(n=n))
        n += 7
    lines.append("ConnectionError: upstream unreachable\n")
    return "".join(lines)


def agent_trace(
    *,
    failing: bool = False,
    rng: random.Random | None = None,
    run_key: str | None = None,
    model: str = "gpt-4o-mini",
    stack_size: int = 2048,
) -> list[ReadableSpan]:
    """A realistic 10-span agent trace: workflow -> agent -> 4 x (chat + tool).

    When ``failing``, the last tool raises (an exception event with a ``stack_size`` stack
    trace) and the error propagates to the agent and workflow spans.
    """
    rng = rng or random.Random()
    trace_id = new_trace_id(rng)
    root_id, agent_id = new_span_id(rng), new_span_id(rng)
    t0 = time.time_ns()
    run_attrs = {"otel_diag.run.id": run_key} if run_key else {}
    spans: list[ReadableSpan] = []
    for i in range(4):
        spans.append(
            make_span(
                f"chat {model}",
                trace_id=trace_id,
                parent_id=agent_id,
                start_ns=t0 + (2 * i + 1) * 1_000_000,
                kind=SpanKind.CLIENT,
                attributes={
                    **run_attrs,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": 500 + i,
                    "gen_ai.usage.output_tokens": 60 + i,
                    "gen_ai.response.finish_reasons": ("tool_calls",),
                },
            )
        )
        last = failing and i == 3
        spans.append(
            make_span(
                "execute_tool search",
                trace_id=trace_id,
                parent_id=agent_id,
                start_ns=t0 + (2 * i + 2) * 1_000_000,
                attributes={
                    **run_attrs,
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "search",
                    "gen_ai.tool.call.id": f"call_{i}",
                    "gen_ai.tool.type": "function",
                },
                status=StatusCode.ERROR if last else StatusCode.UNSET,
                description="ConnectionError: upstream unreachable" if last else None,
                events=[
                    exception_event(
                        "ConnectionError", "upstream unreachable", fake_stack(stack_size)
                    )
                ]
                if last
                else None,
            )
        )
    # As the SDK does when an exception propagates through start_as_current_span: each
    # enclosing span records the same exception event and ends with status ERROR.
    agent_status = StatusCode.ERROR if failing else StatusCode.UNSET
    propagated = (
        [exception_event("ConnectionError", "upstream unreachable", fake_stack(stack_size))]
        if failing
        else None
    )
    description = "ConnectionError: upstream unreachable" if failing else None
    spans.append(
        make_span(
            "invoke_agent planner",
            trace_id=trace_id,
            span_id=agent_id,
            parent_id=root_id,
            start_ns=t0,
            duration_ns=10_000_000,
            attributes={
                **run_attrs,
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "planner",
            },
            status=agent_status,
            description=description,
            events=propagated,
        )
    )
    spans.append(
        make_span(
            "invoke_workflow trip",
            trace_id=trace_id,
            span_id=root_id,
            start_ns=t0,
            duration_ns=11_000_000,
            attributes={**run_attrs, "gen_ai.operation.name": "invoke_workflow"},
            status=agent_status,
            description=description,
            events=propagated,
        )
    )
    return spans


class _ReplayIds(IdGenerator):
    """An id generator that hands out given ids, so a replayed trace keeps its ids."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def through_sdk(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The same spans as a real ``TracerProvider`` records them (ids, times, events kept).

    Hand-built spans carry plain dicts; the SDK's carry ``BoundedAttributes`` behind a
    ``MappingProxyType``, whose Python-level ``__iter__``/``__getitem__`` an exporter pays
    for on every access. Benchmarks of an exporter measure on what the SDK hands it.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    ids = _ReplayIds()
    provider = TracerProvider(resource=spans[0].resource if spans else RESOURCE, id_generator=ids)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otel-diag.factories")
    for span in spans:
        ctx = span.context
        ids.trace_id, ids.span_id = ctx.trace_id, ctx.span_id
        parent = None
        if span.parent is not None:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(span.parent))
        live = tracer.start_span(
            span.name,
            context=parent,
            kind=span.kind,
            attributes=dict(span.attributes or {}),
            start_time=span.start_time,
        )
        for event in span.events:
            live.add_event(event.name, dict(event.attributes or {}), timestamp=event.timestamp)
        if span.status.status_code is not StatusCode.UNSET:
            live.set_status(span.status)
        live.end(end_time=span.end_time)
    provider.shutdown()
    return list(memory.get_finished_spans())
