"""REST API list endpoints over 1M error rows in PostgreSQL: p50 / p95 per endpoint.

Load: 100k runs (every 7th failed, 5 agents) and 1M ``error_logs`` rows (10 per run, 50
error shapes, spread over ~12 days), generated inside the database (the same rows as
``bench_export``), plus one "hot" run with 20k errors to page through. A real
``otel-diag serve`` (its own process, no background workers) answers; requests go one at a
time over one keep-alive connection. Baseline in the same run: ``GET /healthz`` through the
same server (the HTTP + framework floor). Target: p95 < 100 ms for every list endpoint.
Figures only: no assertion on timing.

``python -m tests.bench api`` runs it alone; ``BENCH_API_REQUESTS`` sets requests per endpoint.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine

from otel_diag.store.sql import group_hours
from tests.bench.bench_export import MESSAGE, PG_ERRORS, PG_RUNS, STACK, migrate
from tests.bench.bench_ingest import _free_port, _stop, _wait_port
from tests.bench.scratch import create_pg_database, drop_pg_database

REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "60"))
HOT_ERRORS = 20_000
BUDGET = 20.0

PG_HOT = f"""
INSERT INTO runs (id, trace_id, name, service_name, agent_name, status, started_at, ended_at,
    root_seen, root_failed, step_count, llm_calls, tool_calls, input_tokens, output_tokens,
    unpriced_tokens, error_count, last_span_at)
VALUES (md5('rhot')::uuid, md5('thot'), 'hot', 'svc', 'agent-0', 'failed', now(), now(),
    true, true, 0, 0, 0, 0, 0, 0, {HOT_ERRORS}, now());
INSERT INTO error_logs (id, run_id, step_name, source, error_category, error_type,
    error_message, context, attempt, created_at, trace_id, span_id, fingerprint)
SELECT md5('hot' || i)::uuid, md5('rhot')::uuid, 'search', 'tool', 'timeout', 'TimeoutError',
    'search API timed out #' || i, '{{}}'::jsonb, 1, now() - i * interval '1 millisecond',
    md5('thot'), lpad(to_hex(i), 16, '0'), md5('f' || (i % 50))
FROM generate_series(1, {HOT_ERRORS}) AS i;
"""


def fill(url: str) -> tuple[float, float]:
    """Generate the rows inside the database, then count the error-group rollup from them
    (what migration 0007 does for rows stored before it); returns the seconds of each."""
    migrate(url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute(PG_RUNS, {"runs": 100_000, "spread": 1})
        conn.execute(PG_ERRORS, {"message": MESSAGE, "stack": STACK})
        conn.execute(PG_HOT)
        conn.commit()
    filled = time.perf_counter() - started
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            group_hours.rebuild(conn)
    finally:
        engine.dispose()
    rebuilt = time.perf_counter() - started - filled
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return filled, rebuilt


def serve(url: str) -> tuple[subprocess.Popen[bytes], int, str]:
    http_port, grpc_port = _free_port(), _free_port()
    home = tempfile.mkdtemp(prefix="otel-diag-bench-home-")
    cmd = [str(Path(sys.executable).with_name("otel-diag")), "serve", "--no-background"]
    cmd += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    cmd += ["--database-url", url, "--log-level", "warning"]
    env = {**os.environ, "OTEL_DIAG_HOME": home, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(cmd, env=env)
    _wait_port(http_port, proc)
    return proc, http_port, home


def timings(conn: http.client.HTTPConnection, path: str, n: int) -> tuple[list[float], dict]:
    """``n`` sequential GETs of ``path`` (after one warm-up); seconds each, and the last body.

    An endpoint far over target stops after :data:`BUDGET` seconds (at least 3 samples).
    """
    body: dict = {}
    samples: list[float] = []
    deadline = time.monotonic() + BUDGET
    for i in range(n + 1):
        if len(samples) >= 3 and time.monotonic() > deadline:
            break
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {raw[:300]!r}")
        if i:
            samples.append(elapsed)
        body = json.loads(raw)
    return samples, body


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def main() -> None:
    name, url = create_pg_database()
    proc = None
    try:
        seconds, rebuilt = fill(url)
        print(
            f"load: 100,001 runs, 1,000,000 + {HOT_ERRORS:,} error rows, filled in {seconds:.0f}s;"
            f" error-group rollup counted from them in {rebuilt:.1f}s"
        )
        proc, port, _home = serve(url)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        _, body = timings(conn, "/api/runs?agent=agent-0&limit=1", 1)
        typical = body["runs"][0]["id"]
        _, body = timings(conn, "/api/runs?since=1h&status=failed&limit=500", 1)
        hot = next(r["id"] for r in body["runs"] if r["name"] == "hot")
        floor, _ = timings(conn, "/healthz", REQUESTS)
        print(
            f"baseline GET /healthz: p50 {statistics.median(floor) * 1e3:.1f} ms, "
            f"p95 {p95(floor) * 1e3:.1f} ms"
        )
        endpoints = [
            "/api/runs",
            "/api/runs?status=failed&since=7d",
            "/api/runs?agent=agent-3&limit=100",
            "/api/runs?offset=5000",
            f"/api/runs/{typical}/errors",
            f"/api/runs/{hot}/errors",
            f"/api/runs/{hot}/errors?offset=19000&limit=100",
            "/api/error-groups?since=24h",
            "/api/error-groups",
        ]
        worst = 0.0
        for path in endpoints:
            samples, body = timings(conn, path, REQUESTS)
            worst = max(worst, p95(samples))
            items = next((len(v) for v in body.values() if isinstance(v, list)), 0)
            print(
                f"GET {path}: p50 {statistics.median(samples) * 1e3:.1f} ms, "
                f"p95 {p95(samples) * 1e3:.1f} ms ({items} items, {len(samples)} requests)"
            )
        verdict = "met" if worst < 0.1 else "NOT met"
        print(f"worst p95 {worst * 1e3:.1f} ms; target p95 < 100 ms: {verdict}")
        conn.close()
    finally:
        if proc is not None:
            _stop(proc)
        drop_pg_database(name)


if __name__ == "__main__":
    main()
