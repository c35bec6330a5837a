"""The web console over a large tenant: 100k runs, 1M steps, 200k error rows in PostgreSQL.

The rows are generated inside the database (``INSERT ... SELECT generate_series``: seconds,
not the exporter's hours): runs over the last 7 days (5 agents, 3 services, every 7th run
failed with 14 error rows of 50 shapes, a diagnosis for each failed run, 1 in 10 of them
still pending), 10 steps per run, and one run of 200 steps. A real ``otel-diag serve``
process (no background workers) runs on loopback over that database and each page is
requested 30 times after 3 warm-ups.

Printed per page: p50 and p95 of the server's time (the ``Server-Timing`` header every
console page carries: from the request reaching the route to the response being ready) and
the p95 of the loopback round trip, next to the same run's round-trip baselines
``/healthz`` (no database) and ``GET /api/runs?limit=50`` (the REST API's list),
and the page weight of the 200-step run's detail page (HTML plus its CSS and JS; no other
asset exists). Targets: Overview, Runs and Run detail p95 < 300 ms; that page < 500 KB.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import httpx
import psycopg

from otel_diag.config import load_settings
from otel_diag.store.sql.engine import TenantDBManager
from tests.bench.scratch import create_pg_database, drop_pg_database
from tests.receiver.process import ServeProcess

RUNS = 100_000
STEPS_PER_RUN = 10
ERRORS = 200_000
BIG_RUN_STEPS = 200
SPREAD = 7 * 86400 / RUNS  # seconds between run starts: 100k runs over 7 days
SAMPLES, WARMUP = 30, 3
TARGET_MS, TARGET_KB = 300, 500

SEED = [
    # runs: run 0 (the 200-step one) is the newest; every 7th run failed
    f"""
    INSERT INTO runs (id, trace_id, name, service_name, agent_name, status, started_at,
        ended_at, root_seen, root_failed, step_count, llm_calls, tool_calls, input_tokens,
        output_tokens, cost_usd, unpriced_tokens, error_count, last_span_at, diagnosis_state,
        diagnosed_at)
    SELECT md5('r' || r)::uuid, lpad(to_hex(r), 32, '0'), 'invoke_workflow trip-' || (r % 97),
        'svc-' || (r % 3), 'agent-' || (r % 5),
        CASE WHEN r % 7 = 0 THEN 'failed' ELSE 'ok' END, ts, ts + (r % 40 + 1) * interval '1 second',
        true, r % 7 = 0, CASE WHEN r = 0 THEN {BIG_RUN_STEPS} ELSE {STEPS_PER_RUN} END, 5, 5,
        10000, 1000, 0.002 + (r % 13) * 0.0001, 0, CASE WHEN r % 7 = 0 THEN 14 ELSE 0 END,
        ts + interval '41 seconds',
        CASE WHEN r % 7 <> 0 THEN NULL WHEN r % 70 = 0 THEN 'pending' ELSE 'done' END,
        CASE WHEN r % 7 = 0 AND r % 70 <> 0 THEN ts + interval '60 seconds' END
    FROM (SELECT r, now() - interval '30 seconds' - r * {SPREAD} * interval '1 second' AS ts
          FROM generate_series(0, {RUNS - 1}) AS r) AS g
    """,
    # 10 steps per run (runs 1..), alternating chat and tool under an agent span
    f"""
    INSERT INTO steps (id, run_id, trace_id, span_id, parent_span_id, step_name, kind, status,
        started_at, ended_at, duration_ms, model, provider, input_tokens, output_tokens,
        cost_usd, cost_computed_usd, cost_source, attempt)
    SELECT md5('s' || r || '-' || k)::uuid, md5('r' || r)::uuid, lpad(to_hex(r), 32, '0'),
        lpad(to_hex(r * 1000 + k), 16, '0'),
        CASE WHEN k = 0 THEN NULL ELSE lpad(to_hex(r * 1000), 16, '0') END,
        CASE WHEN k = 0 THEN 'agent-' || (r % 5) WHEN k % 2 = 1 THEN 'chat gpt-4o-mini'
             ELSE 'search_flights' END,
        CASE WHEN k = 0 THEN 'agent' WHEN k % 2 = 1 THEN 'llm' ELSE 'tool' END,
        CASE WHEN r % 7 = 0 AND k = 9 THEN 'error' ELSE 'ok' END,
        ts + k * interval '1 second', ts + (k + 1) * interval '1 second', 1000,
        CASE WHEN k % 2 = 1 THEN 'gpt-4o-mini' END, CASE WHEN k % 2 = 1 THEN 'openai' END,
        CASE WHEN k % 2 = 1 THEN 2000 END, CASE WHEN k % 2 = 1 THEN 200 END,
        CASE WHEN k % 2 = 1 THEN 0.0004 END, CASE WHEN k % 2 = 1 THEN 0.0004 END,
        CASE WHEN k % 2 = 1 THEN 'computed' END, 1
    FROM (SELECT r, k, now() - interval '30 seconds' - r * {SPREAD} * interval '1 second' AS ts
          FROM generate_series(1, {RUNS - 1}) AS r, generate_series(0, {STEPS_PER_RUN - 1}) AS k) g
    """,
    # the 200-step run
    f"""
    INSERT INTO steps (id, run_id, trace_id, span_id, parent_span_id, step_name, kind, status,
        started_at, ended_at, duration_ms, model, provider, input_tokens, output_tokens,
        cost_usd, cost_computed_usd, cost_source, attempt)
    SELECT md5('s0-' || k)::uuid, md5('r0')::uuid, lpad('0', 32, '0'), lpad(to_hex(k + 1), 16, '0'),
        CASE WHEN k = 0 THEN NULL ELSE lpad('1', 16, '0') END,
        CASE WHEN k = 0 THEN 'agent-0' WHEN k % 2 = 1 THEN 'chat gpt-4o-mini'
             ELSE 'search_flights' END,
        CASE WHEN k = 0 THEN 'agent' WHEN k % 2 = 1 THEN 'llm' ELSE 'tool' END,
        CASE WHEN k = {BIG_RUN_STEPS - 1} THEN 'error' ELSE 'ok' END,
        now() - interval '30 seconds' + k * interval '100 milliseconds',
        now() - interval '30 seconds' + (k + 1) * interval '100 milliseconds', 100,
        CASE WHEN k % 2 = 1 THEN 'gpt-4o-mini' END, CASE WHEN k % 2 = 1 THEN 'openai' END,
        CASE WHEN k % 2 = 1 THEN 2000 END, CASE WHEN k % 2 = 1 THEN 200 END,
        CASE WHEN k % 2 = 1 THEN 0.0004 END, CASE WHEN k % 2 = 1 THEN 0.0004 END,
        CASE WHEN k % 2 = 1 THEN 'computed' END, 1 + k % 3
    FROM generate_series(0, {BIG_RUN_STEPS - 1}) AS k
    """,
    # 14 error rows for each failed run (run 0 included), 50 shapes
    f"""
    INSERT INTO error_logs (id, run_id, step_id, step_name, source, error_category, error_type,
        error_message, stack_trace, context, attempt, created_at, trace_id, span_id, model,
        fingerprint)
    SELECT md5('e' || i)::uuid, md5('r' || r)::uuid, md5('s' || r || '-9')::uuid,
        'search_flights', 'tool', 'dependency', 'ConnectionError',
        'flight search API unreachable: connect to flights-' || (i % 50) || '.internal:443 timed out (attempt ' || (i % 14) || ')',
        'Traceback (most recent call last):' || chr(10) || '  File "/srv/agent/tools/flights.py", line 88, in search_flights' || chr(10) || 'ConnectionError: unreachable',
        '{{"span.name": "execute_tool search_flights", "gen_ai.tool.name": "search_flights"}}',
        1 + i % 3, ts + (i % 14) * interval '1 second', lpad(to_hex(r), 32, '0'),
        lpad(to_hex(r * 1000 + 9), 16, '0'), NULL, md5('f' || (i % 50))
    FROM (SELECT i, (i / 14) * 7 AS r,
                 now() - interval '30 seconds' - ((i / 14) * 7) * {SPREAD} * interval '1 second' AS ts
          FROM generate_series(0, {ERRORS - 1}) AS i) AS g
    """,
    # a diagnosis for each diagnosed failed run
    """
    INSERT INTO diagnostic_reports (id, run_id, root_cause_analysis, recommended_actions,
        resume_step, confidence_score, error_category, llm_provider, llm_model, cost_usd,
        fingerprint, created_at)
    SELECT md5('d' || id)::uuid, id,
        'The flight search API was unreachable; the tool gave up after its retries.',
        '[{"priority": 1, "action": "Retry with backoff", "rationale": "transient"}]',
        'search_flights', 0.8, 'dependency', 'rules', NULL, NULL, diagnosis_fingerprint,
        diagnosed_at
    FROM runs WHERE diagnosis_state = 'done'
    """,
]


def seed(url: str) -> None:
    manager = TenantDBManager(url, load_settings(database_url=url))
    manager.get_engine()  # migrated
    manager.dispose()
    started = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        for statement in SEED:
            conn.execute(statement)  # type: ignore[arg-type]
        conn.commit()
        conn.execute("ANALYZE")
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("runs", "steps", "error_logs", "diagnostic_reports")
        }
    print(
        "seeded PostgreSQL in "
        f"{time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{n:,} {t}" for t, n in counts.items()),
        flush=True,
    )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]  # nearest rank


def sample(http: httpx.Client, path: str) -> tuple[float, float, float, int]:
    """Server time p50 and p95 (its ``Server-Timing`` header; the round trip when it has
    none), round-trip p95, in ms, over ``SAMPLES`` requests after ``WARMUP``; body size."""
    for _ in range(WARMUP):
        answer = http.get(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
    server, trip = [], []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        answer = http.get(path)
        trip.append((time.perf_counter() - started) * 1000)
        timing = answer.headers.get("server-timing", "")
        server.append(float(timing.split("dur=")[1]) if "dur=" in timing else trip[-1])
    return statistics.median(server), _p95(server), _p95(trip), len(answer.content)


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    name, url = create_pg_database()
    try:
        seed(url)
        # the server in its own process, as users run it: the client's work here never
        # competes with it for the interpreter
        with (
            ServeProcess(url) as server,
            httpx.Client(base_url=server.http_url, timeout=60) as http,
        ):
            measure(http)
    finally:
        drop_pg_database(name)


def measure(http: httpx.Client) -> None:
    big = http.get("/api/runs", params={"limit": 1}).json()["runs"][0]["id"]  # run 0: newest
    typical = http.get("/api/runs", params={"limit": 1, "offset": 7}).json()["runs"][0]["id"]
    base = {p: sample(http, p) for p in ("/healthz", "/api/runs?limit=50")}
    print(
        "baselines (same run, round trip on loopback): "
        + "; ".join(f"{p} p50 {a:.1f} ms, p95 {b:.1f} ms" for p, (a, b, _, _) in base.items()),
        flush=True,
    )
    pages = {
        "Overview": ["/?w=15m", "/?w=24h", "/?w=7d"],
        "Runs": [
            "/runs",
            "/runs?status=failed&w=24h",
            "/runs?q=trip-42&sort=cost",
            "/runs?agent=agent-3&service=svc-1&sort=duration&dir=asc&p=20",
        ],
        "Run detail": [f"/runs/{big}", f"/runs/{typical}"],
        "(Errors, Cost, Agents: no target)": ["/errors?w=7d", "/cost?w=7d", "/agents?w=7d"],
    }
    missed = []
    for label, paths in pages.items():
        for path in paths:
            p50, p95, trip, size = sample(http, path)
            targeted = not label.startswith("(")
            verdict = ("met" if p95 < TARGET_MS else "MISSED") if targeted else "-"
            if targeted and p95 >= TARGET_MS:
                missed.append(path)
            print(
                f"{label:<12} {path:<62} server p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
                f"(round trip p95 {trip:7.1f} ms)  {size / 1024:6.1f} KB  "
                f"target p95 < {TARGET_MS} ms: {verdict}",
                flush=True,
            )
    html = len(http.get(f"/runs/{big}").content)
    assets = sum(len(http.get(f"/static/console.{ext}").content) for ext in ("css", "js"))
    total = (html + assets) / 1024
    print(
        f"page weight, run detail of the {BIG_RUN_STEPS}-step run: HTML {html / 1024:.1f} KB + "
        f"CSS/JS {assets / 1024:.1f} KB = {total:.1f} KB; target < {TARGET_KB} KB: "
        f"{'met' if total < TARGET_KB else 'MISSED'}",
        flush=True,
    )
    if missed:
        print(f"p95 target missed on: {', '.join(missed)}", flush=True)


if __name__ == "__main__":
    main()
