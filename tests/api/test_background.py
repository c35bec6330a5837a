"""``serve`` runs the diagnosis worker: a failed run is diagnosed unattended, then visible."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_protobuf


def test_a_failed_run_ingested_over_otlp_is_diagnosed_without_being_asked(
    serve: Callable[..., Running],
) -> None:
    srv = serve(background=True, diagnosis="rules", decision_wait=0.3)
    srv.raw_export(to_protobuf(agent_trace("unattended")).SerializeToString())
    deadline = time.monotonic() + 30
    reply = srv.http.get("/api/runs/unattended/diagnostics/latest")
    while reply.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.1)
        reply = srv.http.get("/api/runs/unattended/diagnostics/latest")
    assert reply.status_code == 200
    assert reply.json()["llm_provider"] == "rules" and reply.json()["resume_step"] == "search"
    metrics = srv.http.get("/metrics").text
    assert 'otel_diag_diagnoses{outcome="done",tenant="default"} 1.0' in metrics
