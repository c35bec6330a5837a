"""The REST API: filters, pagination, run references, trace links, diagnoses, schema, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.prices import cost
from tests.receiver.harness import Running
from tests.receiver.otlp import Span, agent_trace, to_protobuf

JAEGER = "http://localhost:16686/trace/{trace_id}"
DAY_NS = 86_400 * 10**9


def _shift(spans: list[Span], ns: int) -> list[Span]:
    for s in spans:
        s.start += ns
    return spans


def _load(srv: Running) -> dict[str, list[Span]]:
    traces = {
        "failed": agent_trace("run-failed"),
        "ok": agent_trace("run-ok", fail=False),
        "old": _shift(agent_trace("run-old"), -3 * DAY_NS),
    }
    traces["ok"][1].attributes["gen_ai.agent.name"] = "booker"
    loner = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "loner"}
    traces["running"] = [Span("invoke_agent loner", attributes=loner, parent=b"\x01" * 8)]
    for spans in traces.values():
        srv.raw_export(to_protobuf(spans).SerializeToString())
    return traces


def test_runs_are_listed_newest_first_with_filters(serve: Callable[..., Running]) -> None:
    srv = serve()
    _load(srv)
    runs = srv.http.get("/api/runs").json()["runs"]
    assert len(runs) == 4 and runs[-1]["name"] == "invoke_workflow demo"
    statuses = {r["status"] for r in runs}
    assert statuses == {"failed", "ok", "running"}
    get = lambda **q: srv.http.get("/api/runs", params=q).json()["runs"]  # noqa: E731
    assert {r["status"] for r in get(status="failed")} == {"failed"} and len(
        get(status="failed")
    ) == 2
    assert [r["agent_name"] for r in get(agent="booker")] == ["booker"]
    assert len(get(since="1d")) == 3 and len(get(since="7d")) == 4
    assert len(get(since="90min")) == 3 and len(get(since="2w")) == 4  # as the CLI reads them
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 86400))
    assert len(get(since=since)) == 3
    assert srv.http.get("/api/runs", params={"since": "last tuesday"}).status_code == 422
    assert srv.http.get("/api/runs", params={"status": "exploded"}).status_code == 422


def test_a_bad_or_absurd_since_is_a_422_that_says_why_on_every_endpoint(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    _load(srv)
    reasons = {
        "last tuesday": "not a time",
        "15": "not a time",  # a bare number is neither a look-back nor a time
        "99999999w": "before year 1",
        "9999-12-31T23:59:59-05:00": "out of range",  # past year 9999 once in UTC
        "0001-01-01T00:00:00+01:00": "out of range",  # before year 1 once in UTC
    }
    for path in ("/api/runs", "/api/error-groups"):
        for value, reason in reasons.items():
            reply = srv.http.get(path, params={"since": value})
            assert reply.status_code == 422, (path, value, reply.text)
            (problem,) = reply.json()["detail"]
            assert problem["loc"] == ["query", "since"], problem
            assert reason in problem["msg"] and value in problem["msg"], problem
    get = lambda since: srv.http.get("/api/runs", params={"since": since})  # noqa: E731
    assert len(get(" ").json()["runs"]) == 4  # blank: no bound
    assert len(get("0001-01-01T00:00:00Z").json()["runs"]) == 4  # extreme, yet a time
    assert get("9999-12-31").json()["runs"] == []
    groups = srv.http.get("/api/error-groups", params={"since": "0001-01-01"})
    assert groups.status_code == 200 and groups.json()["groups"]


def test_runs_paginate_with_next_offset(serve: Callable[..., Running]) -> None:
    srv = serve()
    _load(srv)
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = srv.http.get("/api/runs", params={"limit": 3, "offset": offset}).json()
        seen += [r["id"] for r in page["runs"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 4
    assert srv.http.get("/api/runs", params={"limit": 0}).status_code == 422


def test_runs_and_errors_link_to_the_trace_viewer(serve: Callable[..., Running]) -> None:
    srv = serve(trace_url_template=JAEGER)
    traces = _load(srv)
    trace_id = traces["failed"][0].trace_id.hex()
    run = next(r for r in srv.http.get("/api/runs").json()["runs"] if r["trace_id"] == trace_id)
    assert run["trace_url"] == f"http://localhost:16686/trace/{trace_id}"
    errors = srv.http.get(f"/api/runs/{run['id']}/errors").json()
    assert {e["trace_url"] for e in errors["errors"]} == {run["trace_url"]}
    summary = srv.http.get(f"/api/runs/{run['id']}/errors/summary").json()
    assert summary["trace_url"] == run["trace_url"]


def test_without_a_template_there_is_no_trace_url(serve: Callable[..., Running]) -> None:
    srv = serve()
    _load(srv)
    assert {r["trace_url"] for r in srv.http.get("/api/runs").json()["runs"]} == {None}


def test_a_run_is_found_by_uuid_trace_id_run_id_string_and_prefix(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    traces = _load(srv)
    failed = next(
        r
        for r in srv.http.get("/api/runs", params={"status": "failed"}).json()["runs"]
        if r["trace_id"] == traces["failed"][0].trace_id.hex()
    )
    for ref in (failed["id"], failed["trace_id"], "run-failed", failed["id"].replace("-", "")[:12]):
        reply = srv.http.get(f"/api/runs/{ref}/errors")
        assert reply.status_code == 200, ref
        assert reply.json()["run_id"] == failed["id"]
    assert srv.http.get("/api/runs/no-such-run/errors").status_code == 404
    assert srv.http.get("/api/runs/no-such-run/errors/summary").status_code == 404


def test_errors_paginate_and_summarize(serve: Callable[..., Running]) -> None:
    srv = serve()
    spans = agent_trace("many-errors")
    spans += [
        Span(
            f"execute_tool t{i}",
            trace_id=spans[0].trace_id,
            parent=spans[1].span_id,
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"t{i}"},
            error=f"rate limit exceeded (429) #{i}",
            error_type="RateLimitError",
        )
        for i in range(5)
    ]
    srv.raw_export(to_protobuf(spans).SerializeToString())
    first = srv.http.get("/api/runs/many-errors/errors", params={"limit": 4}).json()
    assert (first["total"], len(first["errors"]), first["next_offset"]) == (7, 4, 4)
    rest = srv.http.get("/api/runs/many-errors/errors", params={"limit": 4, "offset": 4}).json()
    assert len(rest["errors"]) == 3 and rest["next_offset"] is None
    past = srv.http.get("/api/runs/many-errors/errors", params={"offset": 100}).json()
    assert (past["errors"], past["total"], past["next_offset"]) == ([], 7, None)
    ids = [e["id"] for e in first["errors"] + rest["errors"]]
    assert len(set(ids)) == 7
    summary = srv.http.get("/api/runs/many-errors/errors/summary").json()
    assert summary["total"] == 7
    assert summary["by_category"].get("rate_limit") == 5
    assert sum(f["count"] for f in summary["fingerprints"]) == 7


def test_diagnose_stores_a_report_that_diagnostics_returns(serve: Callable[..., Running]) -> None:
    srv = serve(diagnosis="rules")
    _load(srv)
    assert srv.http.get("/api/runs/run-failed/diagnostics/latest").status_code == 404
    assert srv.http.get("/api/runs/run-failed/diagnostics").json()["reports"] == []
    made = srv.http.post("/api/runs/run-failed/diagnose")
    assert made.status_code == 200, made.text
    report = made.json()
    assert report["root_cause_analysis"] and report["recommended_actions"]
    assert 0 <= report["confidence_score"] <= 1
    latest = srv.http.get("/api/runs/run-failed/diagnostics/latest").json()
    assert latest["id"] == report["id"]
    assert srv.http.post("/api/runs/run-ok/diagnose").status_code == 409
    assert srv.http.post("/api/runs/nope/diagnose").status_code == 404
    metrics = srv.http.get("/metrics").text
    assert 'otel_diag_diagnosis_reports{provider="rules",tenant="default"} 1.0' in metrics


def test_openapi_documents_the_five_endpoints(serve: Callable[..., Running]) -> None:
    srv = serve()
    paths = srv.http.get("/openapi.json").json()["paths"]
    assert "get" in paths["/api/runs"]
    assert "get" in paths["/api/runs/{run_id}/errors"]
    assert "get" in paths["/api/runs/{run_id}/errors/summary"]
    assert "post" in paths["/api/runs/{run_id}/diagnose"]
    assert "get" in paths["/api/runs/{run_id}/diagnostics"]
    assert "get" in paths["/api/runs/{run_id}/diagnostics/latest"]
    assert "post" in paths["/v1/traces"]
    params = {p["name"] for p in paths["/api/runs"]["get"]["parameters"]}
    assert {"status", "since", "agent", "limit", "offset"} <= params


def test_metrics_expose_ingest_runs_and_cost(serve: Callable[..., Running]) -> None:
    srv = serve()
    _load(srv)
    text = srv.http.get("/metrics").text
    for family in (
        "otel_diag_spans_received_total",
        "otel_diag_spans_stored_total",
        "otel_diag_spans_refused_total",
        "otel_diag_spans_dropped_total",
        "otel_diag_error_rows_written_total",
        "otel_diag_ingest_queue_depth",
        "otel_diag_runs_open",
        "otel_diag_diagnoses",
        "otel_diag_diagnosis_cost_usd",
        "otel_diag_observed_cost_usd_total",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family
    assert 'otel_diag_runs_open{tenant="default"} 1.0' in text
    assert 'otel_diag_observed_cost_usd_total{model="gpt-4o-mini",tenant="default"}' in text
    assert 'otel_diag_spans_received_total{transport="grpc"} 13.0' in text
    assert srv.http.get("/healthz").json() == {"status": "ok"}
    assert srv.http.get("/readyz").json()["databases"] == {"default": "ok"}


def test_diagnostics_lists_every_report_newest_first_in_pages(
    serve: Callable[..., Running],
) -> None:
    srv = serve(diagnosis="rules")
    _load(srv)
    made = [
        srv.http.post("/api/runs/run-failed/diagnose", params={"force": True}) for _ in range(3)
    ]
    assert [m.status_code for m in made] == [200, 200, 200]
    ids = [m.json()["id"] for m in made]

    first = srv.http.get("/api/runs/run-failed/diagnostics", params={"limit": 2}).json()
    assert [r["id"] for r in first["reports"]] == ids[::-1][:2]
    assert (first["limit"], first["offset"], first["next_offset"]) == (2, 0, 2)
    rest = srv.http.get("/api/runs/run-failed/diagnostics", params={"limit": 2, "offset": 2})
    assert [r["id"] for r in rest.json()["reports"]] == [ids[0]]
    assert rest.json()["next_offset"] is None
    # each listed report is complete: the same JSON as the report on its own
    assert first["reports"][0] == srv.http.get("/api/runs/run-failed/diagnostics/latest").json()
    assert first["reports"][0]["fallback_reason"] == "mode_rules"
    assert srv.http.get("/api/runs/nope/diagnostics").status_code == 404
    bad = srv.http.get("/api/runs/run-failed/diagnostics", params={"limit": 0})
    assert bad.status_code == 422
    schema = srv.http.get("/openapi.json").json()
    listed = schema["paths"]["/api/runs/{run_id}/diagnostics"]["get"]
    ref = listed["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/DiagnosticReportPage")
    assert {"limit", "offset"} <= {p["name"] for p in listed["parameters"]}
    fields = schema["components"]["schemas"]["DiagnosticReport"]["properties"]
    assert {"fallback_reason", "reused_from"} <= set(fields)


def test_the_cost_of_failure_is_served_and_scraped(serve: Callable[..., Running]) -> None:
    srv = serve()
    _load(srv)  # run-failed (now) and run-old (3 days ago) failed, 800 + 50 tokens each
    one = cost("gpt-4o-mini", 800, 50)

    week = srv.http.get("/api/cost/failures").json()  # since 7d by default
    assert week["failed_runs"] == {
        "count": 2,
        "input_tokens": 1600,
        "output_tokens": 100,
        "cost_usd": pytest.approx(2 * one),
    }
    assert [r["name"] for r in week["by_category"]] == ["undiagnosed"]  # not diagnosed yet
    assert [r["name"] for r in week["by_agent"]] == ["planner"]
    day = srv.http.get("/api/cost/failures", params={"since": "24h"}).json()
    assert day["failed_runs"]["count"] == 1 and day["retried_attempts"]["count"] == 0
    assert srv.http.get("/api/cost/failures", params={"since": "soon"}).status_code == 422

    metrics = srv.http.get("/metrics").text
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith("otel_diag_failure_cost_usd{")
        and 'spent_by="failed_runs"' in m
        and 'category="undiagnosed"' in m
    )
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(one)  # the last 24 h only
    assert (
        'otel_diag_failure_tokens{category="undiagnosed",spent_by="failed_runs",tenant="default"} 850.0'
        in metrics
    )
    assert 'otel_diag_failure_cost_by_agent_usd{agent="planner",spent_by="failed_runs"' in metrics
