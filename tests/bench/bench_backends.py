"""The three storage backends side by side: ingest spans/s and ``otel-diag cost --since 7d``.

The same spans (agent traces of 10 spans, 10 % failing, whole traces per batch of 1,000
spans, as a collector's batch processor sends them) go through the span sink into SQLite,
PostgreSQL (a fresh database on the machine's server) and MongoDB (a FerretDB v1.24 with its
SQLite handler, started here on a free loopback port, from the pinned peer build). The
baseline, measured in the same run: ``project()`` alone, the work every backend does
before it stores anything. Then ``otel-diag cost --since 7d --json`` runs in-process
against each store (best of 3). Figures only: no assertion on timing.

``python -m tests.bench backends`` runs it; ``BENCH_BACKENDS_SPANS`` scales the load.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from otel_diag.cli import main as cli
from otel_diag.config import load_settings
from otel_diag.projection.project import project, trace_runs_in
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.spans.record import SpanRecord
from otel_diag.store import open_storage
from otel_diag.store.port import ExportFilter
from otel_diag.store.sink import SpanSink
from tests.bench.scratch import create_pg_database, drop_pg_database
from tests.e2e.processes import Proc, child_env, free_port, listening, wait_until
from tests.factories import agent_trace
from tests.peers import build_peer

SPANS = int(os.environ.get("BENCH_BACKENDS_SPANS", "20000"))
BATCH = 1000


def _records() -> list[list[SpanRecord]]:
    rng = random.Random(15)
    traces = [
        [r for r in map(from_readable_span, agent_trace(failing=rng.random() < 0.1, rng=rng)) if r]
        for _ in range(SPANS // 10)
    ]
    per_batch = BATCH // 10
    return [
        [r for trace in traces[i : i + per_batch] for r in trace]
        for i in range(0, len(traces), per_batch)
    ]


@contextmanager
def _sqlite() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="otel-diag-bench-"))
    try:
        yield f"sqlite:///{root / 'otel_diag.db'}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _postgres() -> Iterator[str]:
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@contextmanager
def _mongodb() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="otel-diag-bench-ferretdb-"))
    port = free_port()
    argv = [
        str(build_peer("ferretdb")),
        "--handler=sqlite",
        f"--sqlite-url=file:{root}/",
        f"--listen-addr=127.0.0.1:{port}",
        "--log-level=error",
    ]
    proc = Proc("ferretdb", argv, root / "ferretdb.log", child_env()).start()
    try:
        wait_until(lambda: listening(port), timeout=60, what="FerretDB", procs=[proc])
        yield f"mongodb://127.0.0.1:{port}/bench_{uuid.uuid4().hex[:8]}"
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


def _ingest(url: str, batches: list[list[SpanRecord]]) -> tuple[float, dict[str, int]]:
    storage = open_storage(load_settings(database_url=url), url)
    sink = SpanSink(storage)
    storage.tenant()  # the tenant's schema / indexes are created outside the clock
    started = time.perf_counter()
    for batch in batches:
        sink.write(batch)
    elapsed = time.perf_counter() - started
    store = storage.tenant()
    counts = {t: store.export_count(t, ExportFilter()) for t in ("runs", "steps", "errors")}
    storage.dispose()
    return elapsed, counts


def _cost_seconds(url: str) -> float:
    runner = CliRunner()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        result = runner.invoke(cli, ["cost", "--since", "7d", "--json", "--database-url", url])
        best = min(best, time.perf_counter() - started)
        if result.exit_code != 0:
            raise RuntimeError(result.output)
    return best


def main() -> None:
    batches = _records()
    spans = sum(len(b) for b in batches)
    started = time.perf_counter()
    for batch in batches:
        project(batch, trace_runs_in(batch))
    baseline = spans / (time.perf_counter() - started)
    print(f"{spans} spans in {len(batches)} batches of {BATCH}")
    print(f"  baseline project() alone      {baseline:10,.0f} spans/s")
    for name, backend in (("sqlite", _sqlite), ("postgresql", _postgres), ("mongodb", _mongodb)):
        with backend() as url:
            elapsed, counts = _ingest(url, batches)
            cost = _cost_seconds(url)
        print(
            f"  {name:<11} ingest {spans / elapsed:10,.0f} spans/s ({elapsed:6.2f} s; "
            f"{counts['runs']} runs, {counts['steps']} steps, {counts['errors']} errors)  "
            f"cost --since 7d {cost * 1000:8.1f} ms"
        )


if __name__ == "__main__":
    main()
