"""``make demo``: a failing agent app sends its traces over OTLP to ``otel-diag serve``.

1. Uses the server at ``OTEL_DIAG_DEMO_URL`` (default ``http://127.0.0.1:4318``, what
   ``make run`` starts) if it answers ``/healthz``; otherwise starts a temporary one on free
   ports over ``$OTEL_DIAG_HOME`` (rules diagnosis unless an LLM key is configured).
2. Runs :mod:`otel_diag.examples.failing_agent` in a subprocess under
   ``opentelemetry-instrument --traces_exporter otlp_proto_grpc``: the app knows nothing of
   otel-diag, it only speaks OTLP.
3. Reads the run's errors from the REST API, asks for a diagnosis
   (``POST /api/runs/{id}/diagnose``) and prints both, then, for a server that outlives the
   demo, the run's page in the web console.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack
from typing import Any

from rich.console import Console

from otel_diag.cli import render
from otel_diag.examples.launch import error_table, opentelemetry_instrument

DEFAULT_URL = "http://127.0.0.1:4318"
LLM_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "GEMINI_API_KEY")


def _headers() -> dict[str, str]:
    key = os.environ.get("OTEL_DIAG_API_KEY")
    return {"authorization": f"Bearer {key}"} if key else {}


def _call(method: str, url: str, timeout: float = 120.0) -> tuple[int, str]:
    """(status, body) of one request with the demo's headers (the standard library only:
    the shipped examples use nothing beyond otel-diag's own dependencies)."""
    request = urllib.request.Request(url, method=method, headers=_headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _reachable(url: str) -> bool:
    try:
        return _call("GET", f"{url}/healthz", timeout=1.0)[0] == 200
    except OSError:
        return False


def _temporary_server(stack: ExitStack, console: Console) -> tuple[str, str]:
    from otel_diag.config import load_settings
    from otel_diag.server.runner import ServerThread
    from otel_diag.server.serve import OtelDiagServer

    has_llm = bool(os.environ.get("OTEL_DIAG_LLM_API_BASE")) or any(
        os.environ.get(k) for k in LLM_KEYS
    )
    settings = load_settings(diagnosis=None if has_llm else "rules")
    server = OtelDiagServer(settings, grpc_port=0, http_port=0)
    stack.enter_context(ServerThread(server))
    console.print(
        f"started a temporary otel-diag serve (database {settings.resolved_database_url}, "
        f"diagnosis={settings.diagnosis})"
    )
    return f"http://127.0.0.1:{server.http_port}", f"http://127.0.0.1:{server.grpc_port}"


def _run_agent(grpc_endpoint: str, run_id: str, console: Console) -> int:
    instrument = opentelemetry_instrument()
    if instrument is None:
        console.print("[red]opentelemetry-instrument not found; run `make install`[/red]")
        return 2
    env = {
        **os.environ,
        "DEMO_RUN_ID": run_id,
        "OTEL_SERVICE_NAME": "trip-planner",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grpc_endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    key = os.environ.get("OTEL_DIAG_API_KEY")
    if key:
        env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = f"authorization=Bearer%20{key}"
    cmd = [instrument, "--traces_exporter", "otlp_proto_grpc", sys.executable, "-m"]
    cmd.append("otel_diag.examples.failing_agent")
    console.print(
        "[bold]$ opentelemetry-instrument --traces_exporter otlp_proto_grpc "
        f"python -m otel_diag.examples.failing_agent[/bold]  (OTLP -> {grpc_endpoint})"
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    console.print(f"agent exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return 0


def _wait_for_errors(url: str, run_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = _call("GET", f"{url}/api/runs/{run_id}/errors")
        if status == 200 and json.loads(body)["total"] >= 3:
            return dict(json.loads(body))
        if time.monotonic() > deadline:
            if status != 200:
                raise RuntimeError(f"GET /api/runs/{run_id}/errors answered {status}: {body}")
            return dict(json.loads(body))
        time.sleep(0.2)


def _show(console: Console, errors: dict[str, Any], report: dict[str, Any] | None) -> None:
    console.print(error_table(f"errors of run {errors['run_id']}", errors["errors"]))
    if report is None:
        return
    console.print(
        f"\n[bold]diagnosis[/bold] ({report['llm_provider']}, confidence "
        f"{report['confidence_score']:.2f}, resume at {report.get('resume_step')!r}):"
    )
    console.print(report["root_cause_analysis"])
    for action in report["recommended_actions"]:
        console.print(f"  - [{action.get('priority')}] {action.get('action')}")


def main() -> int:
    console = render.console()
    run_id = str(uuid.uuid4())
    with ExitStack() as stack:
        url = os.environ.get("OTEL_DIAG_DEMO_URL", DEFAULT_URL).rstrip("/")
        running = _reachable(url)
        if running:
            grpc_endpoint = os.environ.get("OTEL_DIAG_DEMO_GRPC", "http://127.0.0.1:4317")
            console.print(f"using the otel-diag server at {url}")
        else:
            url, grpc_endpoint = _temporary_server(stack, console)
        status = _run_agent(grpc_endpoint, run_id, console)
        if status:
            return status
        errors = _wait_for_errors(url, run_id)
        status, body = _call("POST", f"{url}/api/runs/{run_id}/diagnose")
        if status != 200:
            console.print(f"[yellow]diagnosis unavailable: {status} {body}[/yellow]")
        _show(console, errors, json.loads(body) if status == 200 else None)
        if running:  # a temporary server's console ends with the demo
            console.print(f"\nthis run in the web console: {url}/runs/{errors['run_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
