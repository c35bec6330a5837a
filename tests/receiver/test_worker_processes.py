"""``OTEL_DIAG_INGEST_PROCESSES``: the same ingest, decoded and written in worker processes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import grpc
import psycopg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN
from tests.receiver.harness import EXPORT, Running
from tests.receiver.otlp import Span, agent_trace, to_json, to_protobuf
from tests.receiver.process import ServeProcess, alive, children


def test_worker_processes_store_refuse_and_report_like_threads(
    serve: Callable[..., Running],
) -> None:
    srv = serve(ingest_processes=2)
    body = to_protobuf(agent_trace("in-a-worker")).SerializeToString()
    srv.raw_export(body)
    srv.raw_export(body)  # idempotent there too
    assert srv.counts() == {"runs": 1, "steps": 3, "errors": 2}
    js = srv.http.post(
        "/v1/traces",
        content=json.dumps(to_json([Span("ok"), Span("bad", span_id=b"\x01")])),
        headers={"content-type": "application/json"},
    )
    assert js.json()["partialSuccess"]["rejectedSpans"] in ("1", 1)
    with pytest.raises(grpc.RpcError) as info:
        srv.raw_export(b"\xff\xff\xff\xff")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    metrics = srv.http.get("/metrics").text
    assert 'otel_diag_spans_received_total{transport="grpc"} 8.0' in metrics
    assert 'otel_diag_spans_dropped_total{reason="invalid_span"} 1.0' in metrics


def test_a_dead_worker_process_costs_a_retry_not_the_server(serve: Callable[..., Running]) -> None:
    srv = serve(ingest_processes=1)
    srv.raw_export(to_protobuf(agent_trace("warm-up")).SerializeToString())
    workers = list(srv.server.ingestor._executor._processes)  # type: ignore[attr-defined]
    os.kill(workers[0], signal.SIGKILL)
    body = to_protobuf(agent_trace("after-crash")).SerializeToString()
    outcomes = []
    for _ in range(20):  # the pool is replaced; a client's retry then succeeds
        try:
            ExportTraceServiceResponse.FromString(srv.raw_export(body))
            outcomes.append("ok")
            break
        except grpc.RpcError as exc:
            outcomes.append(exc.code().name)  # type: ignore[attr-defined]
    assert outcomes[-1] == "ok" and set(outcomes[:-1]) <= {"UNAVAILABLE"}
    assert srv.counts()["runs"] == 2
    assert srv.healthy()


def _database_connections(db_url: str) -> int:
    """Sessions other than ours on the test's PostgreSQL database."""
    url = make_url(db_url)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # connections to count
def test_ingest_processes_die_with_a_killed_server_and_leave_no_connections(
    db_url: str,
) -> None:
    """``kill -9`` of ``serve``: no orphaned worker keeps memory or a database connection."""
    env = {"OTEL_DIAG_INGEST_PROCESSES": "2"}
    with ServeProcess(db_url, env=env) as srv:
        body = to_protobuf(agent_trace("before-the-kill")).SerializeToString()
        with grpc.insecure_channel(srv.grpc_target) as channel:
            futures = [channel.unary_unary(EXPORT).future(body, timeout=30) for _ in range(4)]
            for future in futures:
                future.result()
        workers = children(srv.pid)
        assert workers, "the server started no ingest process"
        srv.signal(signal.SIGKILL)
        srv.proc.wait(10)  # type: ignore[union-attr]
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(alive(pid) for pid in workers):
                time.sleep(0.1)
            assert [pid for pid in workers if alive(pid)] == []
            while time.monotonic() < deadline and _database_connections(db_url):
                time.sleep(0.1)
            assert _database_connections(db_url) == 0
        finally:  # a failing run must not leave its orphans behind
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
