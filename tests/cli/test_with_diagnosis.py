"""``errors`` and ``monitor`` show a stored diagnosis (written by the real service, rules mode)."""

from __future__ import annotations

import json
import time
import uuid

from click.testing import CliRunner
from opentelemetry.trace import Tracer

from otel_diag.cli import main
from otel_diag.config import load_settings
from otel_diag.diagnosis.service import DiagnosticsService
from otel_diag.store.port import Storage
from tests.cli.seed import agent_run


def test_errors_and_monitor_show_the_latest_diagnosis(
    db_url: str, manager: Storage, tracer: Tracer
) -> None:
    run_id = str(uuid.uuid4())
    agent_run(
        tracer,
        run_id=run_id,
        agent="planner",
        start_ns=time.time_ns() - 30_000_000_000,
        duration_ms=40,
        tool_failures=3,
        fail_run=True,
    )
    settings = load_settings(database_url=db_url, diagnosis="rules")
    report = DiagnosticsService(manager=manager, settings=settings).analyze_failure(run_id)
    runner = CliRunner()

    errors = runner.invoke(main, ["errors", run_id[:8], "--database-url", db_url])
    data = json.loads(
        runner.invoke(main, ["errors", run_id, "--json", "--database-url", db_url]).stdout
    )
    monitor = runner.invoke(main, ["monitor", "--once", "--database-url", db_url])

    assert errors.exit_code == 0, errors.output
    assert "Diagnosis (" in errors.stdout
    assert "by: rules" in errors.stdout
    assert f"confidence: {report.confidence_score:.2f}" in errors.stdout
    assert data["diagnosis"]["id"] == str(report.id)
    assert data["diagnosis"]["llm_provider"] == "rules"
    assert monitor.exit_code == 0, monitor.output
    assert "Latest diagnoses" in monitor.stdout and "No diagnoses yet." not in monitor.stdout
    assert run_id[:8] in monitor.stdout.split("Latest diagnoses")[1]
