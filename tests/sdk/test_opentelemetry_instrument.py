"""``opentelemetry-instrument --traces_exporter otel_diag`` loads our exporter by entry point."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.prices import cost

BIN = Path(sys.executable).parent


@pytest.mark.timeout(120)
def test_an_instrumented_script_leaves_error_rows_with_tokens_and_cost(tmp_path):
    db = tmp_path / "instrumented.db"
    run_id = str(uuid.uuid4())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "OTEL_DIAG_DATABASE_URL": f"sqlite:///{db}",
        "OTEL_SERVICE_NAME": "trip-planner",
        "DEMO_RUN_ID": run_id,
    }
    proc = subprocess.run(
        [
            str(BIN / "opentelemetry-instrument"),
            "--traces_exporter",
            "otel_diag",
            sys.executable,
            "-m",
            "otel_diag.examples.failing_agent",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 1, proc.stderr  # the agent itself fails, as designed
    assert "Traceback" not in proc.stderr  # but nothing of ours raised or complained

    conn = sqlite3.connect(db)
    run = conn.execute(
        "SELECT status, service_name, llm_calls, tool_calls, input_tokens, output_tokens, "
        "cost_usd, error_count FROM runs WHERE id = ?",
        (uuid.UUID(run_id).hex,),
    ).fetchone()
    assert run[:6] == ("failed", "trip-planner", 1, 3, 812, 64)
    assert run[6] == pytest.approx(cost("gpt-4o-mini", 812, 64))
    assert run[7] == 3  # three tool attempts; the agent and workflow spans only re-record
    tool_errors = conn.execute(
        "SELECT attempt, source, error_category, error_message, propagated_to FROM error_logs "
        "WHERE step_name = 'search_flights' ORDER BY attempt"
    ).fetchall()
    assert [e[0] for e in tool_errors] == [1, 2, 3]
    # The last attempt's exception is the one that escaped through the agent and the run.
    assert [e[4] is not None for e in tool_errors] == [False, False, True]
    assert len(json.loads(tool_errors[2][4])) == 2
    assert {e[1:3] for e in tool_errors} == {("tool", "dependency")}
    assert all("hunter2" not in e[3] and "[REDACTED]" in e[3] for e in tool_errors)
