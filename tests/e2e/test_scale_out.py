"""collector_config/scale-out.yaml end to end: load_balancing by trace id to two replicas.

Two ``otel-diag serve`` replicas, each over its own SQLite file, behind the shipped scale-out
config; its DNS resolver is swapped for a static list of the two loopback replicas (same
exporter, same ``routing_key: traceID``). Each replica's database shows exactly what was
routed to it, so "a trace lands whole in one replica" is checked directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.observe import all_runs, run_app, steps_by_trace
from tests.e2e.processes import wait_until
from tests.e2e.stack import start_collector, start_jaeger, start_otel_diag

pytestmark = pytest.mark.timeout(1800)  # a cold build of a peer runs in the first test

RUNS = 40


def test_every_trace_lands_whole_in_exactly_one_replica_and_the_totals_add_up(
    jaeger_bin: Path,
    otelcol_bin: Path,
    tmp_path: Path,
    started: list[Any],
    figures: Callable[[str], None],
) -> None:
    jaeger = start_jaeger(jaeger_bin, tmp_path)
    started.append(jaeger)
    replicas = [start_otel_diag(tmp_path, name=f"otel-diag-{i}", jaeger=jaeger) for i in (1, 2)]
    started.extend(replicas)
    collector = start_collector(
        otelcol_bin, tmp_path, config="scale-out.yaml", jaeger=jaeger, otel_diag=replicas
    )
    started.append(collector)
    procs = [collector.proc, *(r.proc for r in replicas)]

    sent = run_app(collector.grpc_endpoint, tmp_path, "--runs", str(RUNS), "--fail-every", "4")
    expected = {r["trace_id"]: r["steps"] for r in sent["runs"]}
    failed_sent = sum(1 for r in sent["runs"] if r["failed"])

    def totals() -> list[tuple[int, int]]:
        out = []
        for replica in replicas:
            with replica.client() as api:
                out.append((len(all_runs(api)), len(all_runs(api, "failed"))))
        return out

    def everything_stored() -> bool:
        return (
            sum(sum(steps_by_trace(r.database_url).values()) for r in replicas)
            >= sum(expected.values())
            and sum(runs for runs, _ in totals()) >= RUNS
        )

    try:
        wait_until(everything_stored, timeout=120, what="every span in a replica", procs=procs)
    finally:
        figures(
            "scale-out: sent "
            f"{RUNS} runs ({failed_sent} failed, {sent['spans']} spans); replicas (runs, failed): "
            + ", ".join(f"{r.proc.name} {t}" for r, t in zip(replicas, totals(), strict=True))
        )

    per_replica = [steps_by_trace(r.database_url) for r in replicas]
    for trace_id, steps in expected.items():
        holders = [i for i, steps in enumerate(per_replica) if trace_id in steps]
        assert len(holders) == 1, f"trace {trace_id} is in replicas {holders}"
        assert per_replica[holders[0]][trace_id] == steps, f"trace {trace_id} is not whole"
    assert set().union(*per_replica) == set(expected)
    assert all(per_replica), "load_balancing sent everything to one replica"
    runs = totals()
    assert sum(n for n, _ in runs) == RUNS
    assert sum(f for _, f in runs) == failed_sent
