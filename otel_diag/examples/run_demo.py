"""``make run`` (until ``otel-diag serve`` exists): the end-to-end demo on embedded SQLite.

1. runs :mod:`otel_diag.examples.failing_agent` in a subprocess under
   ``opentelemetry-instrument --traces_exporter otel_diag`` (the real exporter, loaded
   through its entry point);
2. reads the rows it left in ``$OTEL_DIAG_HOME/otel_diag.db`` and prints them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from otel_diag.cli import render
from otel_diag.config import load_settings
from otel_diag.error_collector import ErrorCollector
from otel_diag.examples.launch import error_table, opentelemetry_instrument
from otel_diag.rows import to_json
from otel_diag.store import open_storage


def main() -> int:
    console = render.console()
    settings = load_settings()
    run_id = str(uuid.uuid4())
    instrument = opentelemetry_instrument()
    if instrument is None:
        console.print("[red]opentelemetry-instrument not found; run `make install`[/red]")
        return 2
    env = {
        **os.environ,
        "DEMO_RUN_ID": run_id,
        "OTEL_SERVICE_NAME": "trip-planner",
    }
    cmd = [
        instrument,
        "--traces_exporter",
        "otel_diag",
        sys.executable,
        "-m",
        "otel_diag.examples.failing_agent",
    ]
    console.print(f"[bold]$ {' '.join(cmd[:3])} python -m otel_diag.examples.failing_agent[/bold]")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    console.print(f"agent exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")

    storage = open_storage(settings)
    collector = ErrorCollector(manager=storage)
    ctx = collector.build_diagnostic_context(run_id)
    if ctx is None:
        console.print(f"[red]no rows for run {run_id} in {storage.base_url}[/red]")
        storage.dispose()
        return 1
    run = ctx["run"]
    console.print(
        f"\nrun [bold]{run['id']}[/bold] {run['name']!r}: status={run['status']} "
        f"llm_calls={run['llm_calls']} tool_calls={run['tool_calls']} "
        f"tokens={run['tokens']} cost_usd={run['cost_usd']}"
    )
    errors = [to_json(e) for e in collector.get_errors_for_run(run_id)]
    console.print(error_table(f"error_logs ({storage.base_url})", errors))
    storage.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
