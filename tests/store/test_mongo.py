"""What only the MongoDB backend has: its URLs, a database per tenant, indexes on first use,
``otel-diag init --backend mongodb``, and a server that goes away mid-run (FerretDB)."""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pymongo
import pytest

from otel_diag.config import load_settings
from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.store import is_mongodb_url, open_storage
from otel_diag.store.mongo.indexes import INDEXES
from otel_diag.store.mongo.storage import MongoStorage, MongoURLError, tenant_database
from otel_diag.store.sink import SpanSink
from tests.cli.conftest import run_cli
from tests.conftest import IN_CI
from tests.e2e.processes import Proc, child_env, free_port, listening, wait_until
from tests.factories import agent_trace
from tests.peers import peer_binary
from tests.receiver.harness import Running, serve
from tests.receiver.otlp import agent_trace as otlp_trace
from tests.receiver.otlp import to_protobuf

__all__ = ["serve"]  # the receiver tests' fixture: a real server on loopback
PB = {"content-type": "application/x-protobuf"}


def test_mongodb_urls_open_the_mongodb_storage_and_name_a_database_per_tenant() -> None:
    url = "mongodb://127.0.0.1:1/diag"
    storage = open_storage(load_settings(database_url=url))

    assert isinstance(storage, MongoStorage) and is_mongodb_url("MONGODB+SRV://x/y")
    assert tenant_database(url, "default") == "diag"
    assert tenant_database(url, "acme") == "diag__acme"
    assert tenant_database("mongodb://h/t_{tenant}_x", "acme") == "t_acme_x"
    assert tenant_database("mongodb://h", "default") == "otel_diag"
    with pytest.raises(MongoURLError, match="longer than"):
        tenant_database("mongodb://h/" + "d" * 40, "t" * 30)
    storage.dispose()


def test_a_tenants_indexes_are_created_on_first_use(make_mongo_database: Callable[[], str]) -> None:
    url = make_mongo_database()
    storage = open_storage(load_settings(database_url=url))
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(url.rsplit("/", 1)[0])
    try:
        db = client[tenant_database(url, "acme")]
        assert "runs" not in db.list_collection_names()

        storage.tenant("acme")

        for collection, indexes in INDEXES.items():
            names = set(db[collection].index_information())
            assert {i.document["name"] for i in indexes} <= names, collection
        again = open_storage(load_settings(database_url=url))  # another process
        assert again.tenant("acme").write_readiness() == "ok"  # nothing left to create
        assert again.discover_tenants() == ["default", "acme"]
        again.dispose()
    finally:
        client.close()
        storage.dispose()


def test_init_with_the_mongodb_backend_writes_the_config_and_creates_the_indexes(
    make_mongo_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_mongo_database()

    result = run_cli("init", "--backend", "mongodb", "--connection", url, "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["backend"], out["schema_revision"]) == ("mongodb", "mongo-1")
    config = tomllib.loads(Path(out["config"]).read_text())
    assert config["otel_diag"]["database_url"] == url


def test_init_with_the_mongodb_backend_needs_a_connection() -> None:
    result = run_cli("init", "--backend", "mongodb")

    assert result.exit_code != 0 and "mongodb://" in result.output


class ThrowawayFerretDB:
    """A FerretDB of one test's own, stopped and started again on the same port and data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/outage"

    def start(self) -> None:
        argv = [
            str(peer_binary("ferretdb")),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.root}/",
            f"--listen-addr=127.0.0.1:{self.port}",
            "--log-level=error",
        ]
        self.proc = Proc("ferretdb", argv, self.root / "ferretdb.log", child_env()).start()
        wait_until(lambda: listening(self.port), timeout=60, what="FerretDB", procs=[self.proc])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture
def throwaway_ferretdb(tmp_path: Path) -> Iterator[ThrowawayFerretDB]:
    server = ThrowawayFerretDB(tmp_path)
    try:
        server.start()
    except AssertionError as exc:
        if IN_CI:
            pytest.fail(f"FerretDB did not start (CI=true): {exc}")
        pytest.skip(f"FerretDB did not start: {exc}")
    yield server
    server.stop()


def test_a_stopped_server_is_a_transient_failure_and_a_resend_is_stored_after(
    throwaway_ferretdb: ThrowawayFerretDB,
) -> None:
    settings = load_settings(database_url=throwaway_ferretdb.url, db_timeout=0.5)
    storage = open_storage(settings)
    sink = SpanSink(storage)
    before = [r for r in map(from_readable_span, agent_trace(failing=True)) if r]
    during = [r for r in map(from_readable_span, agent_trace(failing=True)) if r]
    sink.write(before)
    throwaway_ferretdb.stop()
    try:
        with pytest.raises(Exception) as info:
            sink.write(during)
        assert storage.is_transient(info.value), repr(info.value)
        assert not storage.is_schema_missing(info.value)
        assert storage.tenant().write_readiness().startswith("unavailable")
    finally:
        throwaway_ferretdb.start()

    sink.write(during)

    store = storage.tenant()
    assert len(store.runs()) == 2
    assert sum(r.error_count for r in store.runs()) == 2
    assert store.write_readiness() == "ok"
    storage.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # serve's default, replaced
def test_serve_ingests_diagnoses_and_answers_the_api_on_mongodb(
    serve: Callable[..., Running], make_mongo_database: Callable[[], str]
) -> None:
    url = make_mongo_database()
    srv = serve(database_url=url, background=True, diagnosis="rules", decision_wait=0.2)
    body = to_protobuf(otlp_trace("served-on-mongo")).SerializeToString()

    srv.raw_export(body)
    http = srv.http.post("/v1/traces", content=body, headers=PB)  # a re-send over HTTP

    assert http.status_code == 200
    assert srv.counts() == {"runs": 1, "steps": 3, "errors": 2}
    run_id = srv.http.get("/api/runs").json()["runs"][0]["id"]
    wait_until(
        lambda: srv.http.get(f"/api/runs/{run_id}/diagnostics").json()["reports"],
        timeout=30,
        what="the worker's diagnosis",
    )
    assert srv.http.get("/api/error-groups").json()["groups"][0]["occurrences"] == 1
    assert srv.http.get(f"/api/runs/{run_id}/errors/summary").json()["total"] == 2
    assert srv.healthy()
    assert 'otel_diag_diagnosis_reports{provider="rules",tenant="default"} 1.0' in (
        srv.http.get("/metrics").text
    )


def test_the_cli_reads_and_diagnoses_runs_on_mongodb(
    make_mongo_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_DIAG_DIAGNOSIS", "rules")
    url = make_mongo_database()
    storage = open_storage(load_settings(database_url=url))
    SpanSink(storage).write(
        [r for r in map(from_readable_span, agent_trace(failing=True, run_key="cli-1")) if r]
    )
    storage.dispose()
    db = ("--database-url", url)

    runs = run_cli("runs", "--json", *db)
    errors = run_cli("errors", "cli-1", "--json", *db)
    diagnosed = run_cli("diagnose", "cli-1", "--force", "--json", *db)
    stats = run_cli("stats", "--json", *db)
    cost = run_cli("cost", "--since", "7d", "--json", *db)
    monitor = run_cli("monitor", "--once", *db)
    exported = run_cli("export", "--format", "csv", "--output", str(tmp_path / "e.csv"), *db)

    for result in (runs, errors, diagnosed, stats, cost, monitor, exported):
        assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(runs.output)["runs"]] == ["failed"]
    assert json.loads(stats.output)["totals"]["failed"] == 1
    assert json.loads(cost.output)["total"]["calls"] == 4
    assert json.loads(diagnosed.output)["llm_provider"] == "rules"
    with (tmp_path / "e.csv").open(newline="") as stream:
        assert len(list(csv.reader(stream))) == 2  # the header and the one failure


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # serve's default, replaced
def test_serve_refuses_retryably_while_mongodb_is_down_then_stores_the_resend(
    serve: Callable[..., Running], throwaway_ferretdb: ThrowawayFerretDB
) -> None:
    srv = serve(database_url=throwaway_ferretdb.url, db_timeout=0.5)
    srv.raw_export(to_protobuf(otlp_trace("before-outage")).SerializeToString())
    body = to_protobuf(otlp_trace("during-outage")).SerializeToString()
    throwaway_ferretdb.stop()
    try:
        with pytest.raises(grpc.RpcError) as info:
            srv.raw_export(body)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        reply = srv.http.post("/v1/traces", content=body, headers=PB)
        assert reply.status_code == 503 and reply.headers["retry-after"]
        assert srv.http.get("/readyz").status_code == 503
        api = srv.http.get("/api/runs")
        assert api.status_code == 503 and int(api.headers["retry-after"]) >= 1, api.text
    finally:
        throwaway_ferretdb.start()

    srv.raw_export(body)

    assert srv.counts() == {"runs": 2, "steps": 6, "errors": 4}
    assert srv.healthy()
