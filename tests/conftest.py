"""Shared fixtures: real SQLite files and real PostgreSQL databases, one fresh per test.

Every store-facing test takes ``db_url`` and so runs twice, on SQLite and on PostgreSQL.
PostgreSQL is the machine's server (``OTEL_DIAG_TEST_PG``, default
``postgresql://otel_diag_test:test-only-pw@127.0.0.1:5432/postgres``, the role
``tests/peers/postgres.sh`` creates). Each test gets its own database, a copy of one migrated
once per run (``empty_db_url`` for tests about migrating), dropped afterwards. Without a
reachable server the PostgreSQL cases skip locally and *fail* under ``CI=true``: CI must
never pass by skipping them.

Behaviour tests of the storage port take ``store_url`` (or ``storage``) instead and run three
times: SQLite, PostgreSQL and MongoDB. MongoDB is a FerretDB (the MongoDB wire protocol over
its SQLite handler) that the run starts once on a free loopback port, from the pinned peer
build (``tests/peers/build.sh ferretdb``); each test gets its own database, dropped after.
Like PostgreSQL, it skips locally and fails under ``CI=true`` when it cannot start."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer
from sqlalchemy import create_engine

from otel_diag.config import load_settings
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store import open_storage
from otel_diag.store.port import Storage
from otel_diag.store.sql import migrate
from otel_diag.store.sql.engine import TenantDBManager

PG_ADMIN = os.environ.get(
    "OTEL_DIAG_TEST_PG", "postgresql://otel_diag_test:test-only-pw@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_error() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # the reason is shown in the skip/fail message
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL of a reachable PostgreSQL server (skip locally / fail in CI if none)."""
    error = _pg_error()
    if error is not None:
        message = f"PostgreSQL at {PG_ADMIN} unreachable: {error}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return PG_ADMIN


class _Dropper:
    """Drops finished tests' databases on a thread of its own, so no test waits for it.

    A drop that fails is remembered and the next one still runs: one failure must not leave
    every later test's database behind. The failures fail the session at close.
    """

    def __init__(self, admin: str) -> None:
        self._admin = admin
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, name="pg-dropper", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._queue.put(name)

    def _run(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as conn:
            while (name := self._queue.get()) is not None:
                try:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except psycopg.Error as exc:
                    self.failures.append(f"{name}: {exc}")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=120)
        if self.failures:
            raise RuntimeError(
                f"{len(self.failures)} test database(s) not dropped; first: {self.failures[0]}"
            )


def _pg_url(admin: str, name: str) -> str:
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def _pg_databases(pg_admin: str) -> Iterator[tuple[str, _Dropper]]:
    """A database migrated to head once per test run (the template), and the dropper.

    Cloning the template (``CREATE DATABASE ... TEMPLATE``, ~0.1 s) instead of migrating a
    new database in every test (~0.7 s) is most of what keeps the suite fast.
    """
    template = f"otel_diag_tpl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}"')
    engine = create_engine(_pg_url(pg_admin, template))
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    dropper = _Dropper(pg_admin)
    yield template, dropper
    dropper.drop(template)
    dropper.close()


@pytest.fixture
def make_pg_database(
    pg_admin: str, _pg_databases: tuple[str, _Dropper]
) -> Iterator[Callable[..., str]]:
    """Factory: a new database per call, as a ``postgresql+psycopg://`` URL.

    Migrated to head (a clone of the run's template) unless ``empty=True``, for the tests
    that are about migrating.
    """
    template, dropper = _pg_databases
    created: list[str] = []

    def make(*, empty: bool = False) -> str:
        name = f"otel_diag_t_{uuid.uuid4().hex[:12]}"
        clone = "" if empty else f' TEMPLATE "{template}"'
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{clone}')
        created.append(name)
        return _pg_url(pg_admin, name)

    yield make
    for name in created:
        dropper.drop(name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per test run, copied by every test that wants one."""
    path = tmp_path_factory.mktemp("template") / "otel_diag.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's ~/.otel-diag or OTEL_DIAG_* settings."""
    for key in list(os.environ):
        if key.startswith("OTEL_DIAG_") and key != "OTEL_DIAG_TEST_PG":
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_DIAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database at the current schema: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "otel_diag.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("make_pg_database")())


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database without any schema, for tests about creating or migrating it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'otel_diag.db'}"
    return str(request.getfixturevalue("make_pg_database")(empty=True))


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A FerretDB on a free loopback port for the whole run: its ``mongodb://`` base URL."""
    from tests.e2e.processes import Proc, child_env, free_port, listening, wait_until
    from tests.peers import peer_binary

    binary = peer_binary("ferretdb")  # skips locally, fails under CI=true, if unbuildable
    data = tmp_path_factory.mktemp("ferretdb")
    port = free_port()
    argv = [
        str(binary),
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--listen-addr=127.0.0.1:{port}",
        "--log-level=error",
    ]
    proc = Proc("ferretdb", argv, data / "ferretdb.log", child_env()).start()
    try:
        wait_until(lambda: listening(port), timeout=60, what="FerretDB's port", procs=[proc])
    except AssertionError as exc:
        proc.stop()
        if IN_CI:
            pytest.fail(f"FerretDB did not start (CI=true: MongoDB tests must run): {exc}")
        pytest.skip(f"FerretDB did not start: {exc}")
    yield f"mongodb://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture
def make_mongo_database(ferretdb: str) -> Iterator[Callable[[], str]]:
    """Factory: a new (empty) MongoDB database per call, as a ``mongodb://`` URL; dropped
    after the test with every tenant database derived from it."""
    import pymongo

    created: list[str] = []

    def make() -> str:
        name = f"otel_diag_t_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return f"{ferretdb}/{name}"

    yield make
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        ferretdb, serverSelectionTimeoutMS=3000
    )
    try:
        for db in client.list_database_names():
            if any(db == n or db.startswith(n + "__") for n in created):
                client.drop_database(db)
    except pymongo.errors.PyMongoError:
        pass  # a test that stopped the server: nothing left to drop that matters
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "postgresql", "mongodb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store for behaviour tests of the storage port, on each backend."""
    if request.param == "mongodb":
        return str(request.getfixturevalue("make_mongo_database")())
    if request.param == "sqlite":
        path = tmp_path / "otel_diag.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("make_pg_database")())


@pytest.fixture
def storage(store_url: str) -> Iterator[Storage]:
    """The storage port over ``store_url`` (SQLite, PostgreSQL or MongoDB)."""
    opened = open_storage(load_settings(database_url=store_url), store_url)
    yield opened
    opened.dispose()


@pytest.fixture
def store_exporter(storage: Storage) -> Iterator[ErrorLogSpanExporter]:
    exp = ErrorLogSpanExporter(manager=storage, settings=storage.settings)
    yield exp
    exp.shutdown()


@pytest.fixture
def store_tracer(store_exporter: ErrorLogSpanExporter) -> Iterator[Tracer]:
    """A real SDK tracer whose spans go synchronously through the exporter to ``storage``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "test-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(store_exporter))
    yield provider.get_tracer("otel-diag-tests")
    provider.shutdown()


@pytest.fixture
def manager(db_url: str) -> Iterator[TenantDBManager]:
    mgr = TenantDBManager(db_url, load_settings(database_url=db_url))
    yield mgr
    mgr.dispose()


@pytest.fixture
def exporter(manager: TenantDBManager) -> Iterator[ErrorLogSpanExporter]:
    exp = ErrorLogSpanExporter(manager=manager, settings=manager.settings)
    yield exp
    exp.shutdown()


@pytest.fixture
def tracer(exporter: ErrorLogSpanExporter) -> Iterator[Tracer]:
    """A real SDK tracer whose spans go synchronously through the real exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": "test-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("otel-diag-tests")
    provider.shutdown()
