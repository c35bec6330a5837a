"""What a sender controls is bounded, and what is bounded is reported, not silently lost."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_json, to_protobuf

YEAR_2554_NS = int(datetime(2554, 1, 1, tzinfo=UTC).timestamp()) * 10**9


def test_timestamps_far_in_the_future_are_read_as_now_and_counted(
    serve: Callable[..., Running],
) -> None:
    """A sender's year-2554 clock must not keep its run at the top of every list and window."""
    srv = serve()
    future = agent_trace("from-2554")
    for span in future:
        span.start = YEAR_2554_NS
    srv.raw_export(to_protobuf(future).SerializeToString())
    json_future = agent_trace("json-from-2554")
    for span in json_future:
        span.start = YEAR_2554_NS
    headers = {"content-type": "application/json"}
    reply = srv.http.post("/v1/traces", content=json.dumps(to_json(json_future)), headers=headers)
    assert reply.status_code == 200
    srv.raw_export(to_protobuf(agent_trace("a-day-later")).SerializeToString())
    runs = srv.http.get("/api/runs").json()["runs"]
    assert runs[0]["name"] == "invoke_workflow demo" and len(runs) == 3
    latest_allowed = datetime.now(UTC) + timedelta(days=1)
    for run in runs:
        assert datetime.fromisoformat(run["started_at"]) < latest_allowed
    assert len(srv.http.get("/api/runs", params={"since": "1h"}).json()["runs"]) == 3
    metrics = srv.http.get("/metrics").text
    # 4 spans x (start, end) + 2 exception events, per transport
    assert "otel_diag_timestamps_clamped_total 20.0" in metrics


def test_events_beyond_the_per_span_limit_keep_exceptions_and_are_reported(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    spans = agent_trace("chatty")
    request = to_protobuf(spans)
    tool = request.resource_spans[0].scope_spans[0].spans[3]
    del tool.events[:]
    now = time.time_ns()
    for i in range(150):  # log noise first, then 50 retries that each raised
        tool.events.add(name="log", time_unix_nano=now + i)
    for i in range(50):
        event = tool.events.add(name="exception", time_unix_nano=now + 1000 + i)
        event.attributes.add(key="exception.type").value.string_value = "TimeoutError"
        event.attributes.add(key="exception.message").value.string_value = f"attempt {i} timed out"
    reply = ExportTraceServiceResponse.FromString(srv.raw_export(request.SerializeToString()))
    assert reply.partial_success.rejected_spans == 0
    assert "72 span events beyond 128 per span were dropped" in reply.partial_success.error_message
    errors = srv.http.get("/api/runs/chatty/errors", params={"limit": 1000}).json()
    assert sum(e["step_name"] == "search" for e in errors["errors"]) == 50
    assert "otel_diag_span_events_dropped_total 72.0" in srv.http.get("/metrics").text
