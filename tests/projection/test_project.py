"""``project()``: spans in, typed rows out (one run update per run, a step per GenAI span)."""

from __future__ import annotations

import dataclasses
import random

from opentelemetry.trace import StatusCode

from otel_diag.projection.project import project, trace_runs_in
from otel_diag.rows import ErrorRow, RunUpdate, Step
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.spans.record import SpanRecord
from tests.factories import agent_trace, make_span, new_trace_id


def records(spans: list) -> list[SpanRecord]:
    out = [from_readable_span(s) for s in spans]
    return [r for r in out if r is not None]


def test_a_trace_projects_to_typed_rows_with_no_private_fields() -> None:
    recs = records(agent_trace(failing=True, rng=random.Random(3), run_key="job-1"))
    proj = project(recs, trace_runs_in(recs))

    assert [type(r) for r in proj.runs.values()] == [RunUpdate]
    assert proj.steps and all(type(s) is Step for s in proj.steps)
    assert proj.errors and all(type(e) is ErrorRow for e in proj.errors)
    run = next(iter(proj.runs.values()))
    assert {f.name for f in dataclasses.fields(run)} == {
        "id",
        "trace_id",
        "name",
        "service_name",
        "agent_name",
        "started_at",
        "ended_at",
        "root_seen",
        "root_failed",
    }
    assert run.root_seen and run.root_failed
    assert run.started_at <= min(s.started_at for s in proj.steps)
    assert run.ended_at >= max(s.ended_at for s in proj.steps)
    assert all(s.run_id == run.id for s in proj.steps)
    assert {s.status for s in proj.steps} == {"ok", "error"}


def test_the_latest_root_of_a_run_decides_its_outcome() -> None:
    """Two traces of one named run (a retry): the root that ended last wins, either order."""
    attrs = {"otel_diag.run.id": "retry-job"}
    failed = make_span(
        "invoke_workflow job",
        trace_id=new_trace_id(),
        attributes=attrs,
        status=StatusCode.ERROR,
        start_ns=1_000_000_000,
    )
    ok = make_span(
        "invoke_workflow job", trace_id=new_trace_id(), attributes=attrs, start_ns=2_000_000_000
    )
    for order in ([failed, ok], [ok, failed]):
        recs = records(order)
        (run,) = project(recs, trace_runs_in(recs)).runs.values()
        assert run.root_seen and not run.root_failed
