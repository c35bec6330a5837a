"""What the end-to-end tests read back: Jaeger's HTTP query API, otel-diag's REST API and DB.

Jaeger is read through the API its UI uses (``/api/traces/{id}``, ``/api/traces?service=``,
``/api/services``); otel-diag through ``/api/runs`` (every page) and, for steps per trace,
its SQLite file (``steps`` is a DESIGN.md table; read-only, WAL lets the server write on).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.processes import child_env


def jaeger_trace(jaeger_url: str, trace_id: str) -> dict[str, Any] | None:
    """The trace as Jaeger's API returns it (``spans``, ``processes``), or None if unknown."""
    reply = httpx.get(f"{jaeger_url}/api/traces/{trace_id}", timeout=10)
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    data = reply.json().get("data") or []
    return data[0] if data else None


def jaeger_traces(jaeger_url: str, service: str, operation: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{jaeger_url}/api/traces",
        params={"service": service, "operation": operation, "limit": 1000, "lookback": "1h"},
        timeout=10,
    )
    reply.raise_for_status()
    return list(reply.json().get("data") or [])


def jaeger_services(jaeger_url: str) -> list[str]:
    reply = httpx.get(f"{jaeger_url}/api/services", timeout=10)
    reply.raise_for_status()
    return list(reply.json().get("data") or [])


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def all_runs(client: httpx.Client, status: str | None = None) -> list[dict[str, Any]]:
    """Every run of the tenant, following ``next_offset``."""
    runs: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        params: dict[str, Any] = {"limit": 500, "offset": offset}
        if status:
            params["status"] = status
        page = client.get("/api/runs", params=params)
        page.raise_for_status()
        body = page.json()
        runs.extend(body["runs"])
        offset = body["next_offset"]
    return runs


def steps_by_trace(database_url: str) -> Counter[str]:
    """Number of ``steps`` rows per trace id in an otel-diag SQLite database."""
    path = database_url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return Counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT trace_id, count(*) FROM steps GROUP BY trace_id").fetchall()
    except sqlite3.OperationalError:  # the server has not created its tables yet
        return Counter()
    finally:
        conn.close()
    return Counter({trace_id: n for trace_id, n in rows})


def run_app(endpoint: str, workdir: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run :mod:`tests.e2e.agent_app` against ``endpoint``; what it sent."""
    proc = start_app(endpoint, workdir, *args)
    return app_result(proc, workdir, timeout)


def start_app(endpoint: str, workdir: Path, *args: str) -> subprocess.Popen[str]:
    log = (workdir / "agent_app.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.agent_app", "--endpoint", endpoint, *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=child_env(),
        cwd=Path(__file__).resolve().parents[2],
    )


def app_result(proc: subprocess.Popen[str], workdir: Path, timeout: float) -> dict[str, Any]:
    """Wait for the app started with :func:`start_app`; what it sent (its JSON report)."""
    out, _ = proc.communicate(timeout=timeout)
    log = (workdir / "agent_app.log").read_text(errors="replace")
    assert proc.returncode == 0, f"agent_app exited {proc.returncode}:\n{log[-3000:]}"
    sent: dict[str, Any] = json.loads(out)
    return sent
