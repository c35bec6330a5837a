"""The database stops during ingest: requests are refused retryably, then a resend is stored in full.

SQLite "down" is a writer that holds the write lock (``BEGIN EXCLUSIVE``) longer than the
lock timeout. PostgreSQL down is a real server stopped mid-test: a throwaway cluster made
with ``initdb`` / ``pg_ctl`` on a free port, so the shared server is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI
from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_protobuf

PB = {"content-type": "application/x-protobuf"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """A private PostgreSQL cluster that a test may stop and start at will."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="otel-diag-pg-"))
        self.root.chmod(0o755)
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        self.init()

    def init(self) -> None:
        """A new, empty cluster in ``root/data`` (also after the old one was wiped)."""
        self._run(
            "initdb",
            "-D",
            str(self.root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        if IN_CI:
            pytest.fail("initdb/pg_ctl not on PATH (CI=true: this test must run)")
        pytest.skip("initdb/pg_ctl not on PATH")
    pg = ThrowawayPostgres()
    pg.start()
    yield pg
    pg.destroy()


def _assert_refused_retryably(srv: Running, body: bytes) -> None:
    with pytest.raises(grpc.RpcError) as info:
        srv.raw_export(body)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "google.rpc.retryinfo-bin" in dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    reply = srv.http.post("/v1/traces", content=body, headers=PB)
    assert reply.status_code == 503 and reply.headers["retry-after"]


def _sqlite_outage(serve: Callable[..., Running], db_url: str) -> None:
    srv = serve(db_timeout=0.3)
    srv.raw_export(to_protobuf(agent_trace("before-outage")).SerializeToString())
    before = srv.counts()
    body = to_protobuf(agent_trace("during-outage")).SerializeToString()
    locker = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock past our timeout
    try:
        _assert_refused_retryably(srv, body)
        assert srv.counts() == before
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    srv.raw_export(body)
    assert srv.counts() == {"runs": 2, "steps": 6, "errors": 4}
    metrics = srv.http.get("/metrics").text
    assert 'otel_diag_spans_refused_total{reason="database_unavailable"} 8.0' in metrics


def _postgres_outage(serve: Callable[..., Running], pg: ThrowawayPostgres) -> None:
    srv = serve(database_url=pg.url, db_timeout=1.0)
    srv.raw_export(to_protobuf(agent_trace("before-outage")).SerializeToString())
    body = to_protobuf(agent_trace("during-outage")).SerializeToString()
    pg.stop()
    try:
        _assert_refused_retryably(srv, body)
        assert srv.http.get("/healthz").status_code == 200
        assert srv.http.get("/readyz").status_code == 503
        api = srv.http.get("/api/runs")
        assert api.status_code == 503 and int(api.headers["retry-after"]) >= 1, api.text
    finally:
        pg.start()
    srv.raw_export(body)
    assert srv.counts() == {"runs": 2, "steps": 6, "errors": 4}
    assert srv.healthy()


def test_database_down_during_ingest_is_refused_retryably_then_a_resend_is_stored_in_full(
    serve: Callable[..., Running], db_url: str, request: pytest.FixtureRequest
) -> None:
    if db_url.startswith("sqlite"):
        _sqlite_outage(serve, db_url)
    else:
        _postgres_outage(serve, request.getfixturevalue("throwaway_pg"))
