"""The database comes back empty (restore, failover to a fresh instance, wiped schema).

Writes must answer "not ready, retry" (UNAVAILABLE / 503 with a retry delay), never the
non-retryable INTERNAL / 500 that makes OTLP clients drop spans; the schema is migrated
again by the server itself, and ingest resumes without a restart.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable

import grpc
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_protobuf
from tests.receiver.test_database_down import ThrowawayPostgres, throwaway_pg

__all__ = ["throwaway_pg"]


def _wipe(db_url: str) -> None:
    """Every table gone, as after restoring an empty backup."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                conn.execute(f'DROP TABLE "{table}"')
        finally:
            conn.close()
        return
    libpq = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _export_until_stored(srv: Running, body: bytes, deadline_s: float = 60) -> list[str]:
    """Export like an OTLP client: resend after UNAVAILABLE, give up on anything else."""
    codes: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            srv.raw_export(body)
            return [*codes, "OK"]
        except grpc.RpcError as exc:
            codes.append(exc.code().name)  # type: ignore[attr-defined]
            if exc.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                return codes
            time.sleep(0.2)
    return codes


def _assert_recovers(srv: Running) -> None:
    first = srv.http.post(
        "/v1/traces",
        content=to_protobuf(agent_trace("http-after")).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert first.status_code in (200, 503), first.text
    if first.status_code == 503:
        assert first.headers["retry-after"]
    codes = _export_until_stored(srv, to_protobuf(agent_trace("after")).SerializeToString())
    assert codes[-1] == "OK" and set(codes[:-1]) <= {"UNAVAILABLE"}, codes
    runs = srv.http.get("/api/runs")
    assert runs.status_code == 200
    assert "invoke_workflow demo" in {r["name"] for r in runs.json()["runs"]}
    assert srv.http.get("/readyz").status_code == 200


def test_a_wiped_schema_is_refused_retryably_migrated_again_and_ingest_resumes(
    serve: Callable[..., Running], db_url: str
) -> None:
    srv = serve()
    srv.raw_export(to_protobuf(agent_trace("before")).SerializeToString())
    _wipe(db_url)
    api = srv.http.get("/api/runs")
    assert api.status_code in (200, 503), api.text  # never a 500
    if api.status_code == 503:  # the schema is being migrated again: retry soon
        assert int(api.headers["retry-after"]) >= 1
    _assert_recovers(srv)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the server uses its own cluster
def test_a_fresh_postgresql_instance_in_place_of_the_old_one_is_migrated_and_used(
    serve: Callable[..., Running], throwaway_pg: ThrowawayPostgres
) -> None:
    """Failover to an empty instance at the same address: the server carries on by itself."""
    srv = serve(database_url=throwaway_pg.url, db_timeout=1.0)
    srv.raw_export(to_protobuf(agent_trace("before")).SerializeToString())
    throwaway_pg.stop()
    shutil.rmtree(throwaway_pg.root / "data")
    throwaway_pg.init()
    throwaway_pg.start()
    ready = srv.http.get("/readyz")
    assert ready.status_code in (200, 503)
    assert "postgres" not in ready.text and str(throwaway_pg.port) not in ready.text
    _assert_recovers(srv)
