"""Builders of OTLP requests (protobuf and hand-written OTLP/JSON) for receiver tests."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def any_value(value: Any) -> common_pb2.AnyValue:
    v = common_pb2.AnyValue()
    if isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int):
        v.int_value = value
    elif isinstance(value, float):
        v.double_value = value
    elif isinstance(value, bytes):
        v.bytes_value = value
    elif isinstance(value, list):
        v.array_value.values.extend(any_value(x) for x in value)
    elif isinstance(value, dict):
        v.kvlist_value.values.extend(kv(k, x) for k, x in value.items())
    else:
        v.string_value = str(value)
    return v


def kv(key: str, value: Any) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=any_value(value))


@dataclass
class Span:
    """A span description both builders understand."""

    name: str
    trace_id: bytes = field(default_factory=lambda: os.urandom(16))
    span_id: bytes = field(default_factory=lambda: os.urandom(8))
    parent: bytes = b""
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # exception message -> status ERROR + exception event
    error_type: str = "RuntimeError"
    kind: int = 1
    start: int = field(default_factory=time.time_ns)
    duration_ns: int = 5_000_000


def agent_trace(
    run_id: str, *, fail: bool = True, tool_error: str = "upstream timed out"
) -> list[Span]:
    """A run: workflow root -> agent -> llm + tool (the tool fails when ``fail``)."""
    tid = os.urandom(16)
    root = Span("invoke_workflow demo", trace_id=tid, attributes={"otel_diag.run.id": run_id})
    agent = Span(
        "invoke_agent planner",
        trace_id=tid,
        parent=root.span_id,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
    )
    llm = Span(
        "chat gpt-4o-mini",
        trace_id=tid,
        parent=agent.span_id,
        kind=3,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 800,
            "gen_ai.usage.output_tokens": 50,
        },
    )
    tool = Span(
        "execute_tool search",
        trace_id=tid,
        parent=agent.span_id,
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        error=tool_error if fail else None,
        error_type="TimeoutError",
    )
    if fail:
        root.error = "run failed"
    return [root, agent, llm, tool]


def _raised_at(s: Span) -> int:
    """An exception is recorded as its span ends (so a child's comes before its parent's)."""
    return s.start + s.duration_ns - 1000


def to_protobuf(
    spans: list[Span], resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        kv(k, v) for k, v in (resource or {"service.name": "receiver-test"}).items()
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for s in spans:
        sp = ss.spans.add(
            trace_id=s.trace_id,
            span_id=s.span_id,
            parent_span_id=s.parent,
            name=s.name,
            kind=s.kind,
            start_time_unix_nano=s.start,
            end_time_unix_nano=s.start + s.duration_ns,
        )
        sp.attributes.extend(kv(k, v) for k, v in s.attributes.items())
        if s.error is not None:
            sp.status.code = trace_pb2.Status.STATUS_CODE_ERROR
            sp.status.message = s.error
            ev = sp.events.add(name="exception", time_unix_nano=_raised_at(s))
            ev.attributes.extend(
                [kv("exception.type", s.error_type), kv("exception.message", s.error)]
            )
    return req


def json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [json_value(v) for v in value]}}
    if isinstance(value, dict):
        return {
            "kvlistValue": {
                "values": [{"key": k, "value": json_value(v)} for k, v in value.items()]
            }
        }
    return {"stringValue": str(value)}


def to_json(spans: list[Span], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: hex ids, integer enums, int64 as strings."""
    out = []
    for s in spans:
        span: dict[str, Any] = {
            "traceId": s.trace_id.hex(),
            "spanId": s.span_id.hex(),
            "name": s.name,
            "kind": s.kind,
            "startTimeUnixNano": str(s.start),
            "endTimeUnixNano": str(s.start + s.duration_ns),
            "attributes": [{"key": k, "value": json_value(v)} for k, v in s.attributes.items()],
        }
        if s.parent:
            span["parentSpanId"] = s.parent.hex()
        if s.error is not None:
            span["status"] = {"code": 2, "message": s.error}
            span["events"] = [
                {
                    "timeUnixNano": str(_raised_at(s)),
                    "name": "exception",
                    "attributes": [
                        {"key": "exception.type", "value": {"stringValue": s.error_type}},
                        {"key": "exception.message", "value": {"stringValue": s.error}},
                    ],
                }
            ]
        out.append(span)
    res = resource or {"service.name": "receiver-test"}
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": k, "value": json_value(v)} for k, v in res.items()]
                },
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": out}],
            }
        ]
    }
