"""``GET /api/error-groups``: failures across runs grouped by shape, over real OTLP ingest."""

from __future__ import annotations

from collections.abc import Callable

from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_protobuf

JAEGER = "http://localhost:16686/trace/{trace_id}"


def _send(srv: Running, run_id: str, message: str, service: str) -> None:
    spans = agent_trace(run_id, tool_error=message)
    srv.raw_export(to_protobuf(spans, {"service.name": service}).SerializeToString())


def test_one_error_across_runs_is_one_group_with_its_latest_diagnosis(
    serve: Callable[..., Running],
) -> None:
    srv = serve(diagnosis="rules", trace_url_template=JAEGER)
    _send(srv, "r1", "upstream timed out after 3000 ms (req 8f7e6d5c)", "checkout")
    _send(srv, "r2", "upstream timed out after 2500 ms (req 0a1b2c3d)", "checkout")
    _send(srv, "r3", "upstream timed out after 100 ms (req ffee0011)", "search")
    assert srv.http.post("/api/runs/r3/diagnose").status_code == 200

    page = srv.http.get("/api/error-groups", params={"since": "1h"}).json()

    timeout, root = page["groups"]  # the tool's timeout, and each run's own "run failed"
    assert (timeout["occurrences"], timeout["runs_affected"]) == (3, 3)
    assert (root["occurrences"], root["runs_affected"]) == (3, 3)
    assert timeout["step_name"] == "search" and timeout["error_type"] == "TimeoutError"
    assert timeout["services"] == ["checkout", "search"] and timeout["agents"] == ["planner"]
    assert timeout["message"] == "upstream timed out after 100 ms (req ffee0011)"
    assert timeout["latest_trace_url"].startswith("http://localhost:16686/trace/")
    diagnosis = timeout["latest_diagnosis"]
    assert diagnosis["llm_provider"] == "rules" and diagnosis["root_cause_analysis"]
    assert page["next_offset"] is None


def test_groups_filter_by_service_and_agent_and_paginate(serve: Callable[..., Running]) -> None:
    srv = serve()
    _send(srv, "a", "quota 1 exceeded", "billing")
    _send(srv, "b", "disk 7 full", "storage")

    billing = srv.http.get("/api/error-groups", params={"service": "billing"}).json()
    nobody = srv.http.get("/api/error-groups", params={"agent": "nobody"}).json()
    first = srv.http.get("/api/error-groups", params={"limit": 2}).json()
    rest = srv.http.get("/api/error-groups", params={"limit": 2, "offset": 2}).json()

    assert {g["message"] for g in billing["groups"]} == {"quota 1 exceeded", "run failed"}
    assert nobody["groups"] == []
    # three groups: the quota, the disk, and "run failed" (one shape in both runs)
    assert (len(first["groups"]), first["next_offset"]) == (2, 2)
    assert (len(rest["groups"]), rest["next_offset"]) == (1, None)


def test_a_bad_window_is_a_422_with_the_reason(serve: Callable[..., Running]) -> None:
    srv = serve()
    _send(srv, "a", "boom", "svc")

    reply = srv.http.get("/api/error-groups", params={"since": "yesterday-ish"})

    assert reply.status_code == 422
    assert "since" in reply.text
