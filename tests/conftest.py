"""Shared fixtures: real SQLite files and real PostgreSQL databases, one fresh per test.

Every store-facing test takes ``db_url`` and so runs twice, on SQLite and on PostgreSQL.
PostgreSQL is the machine's server (``OTEL_DIAG_TEST_PG``, default
``postgresql://otel_diag_test:test-only-pw@127.0.0.1:5432/postgres``); each test gets its own database, dropped
afterwards. Without a reachable server the PostgreSQL cases skip locally and *fail* under
``CI=true``: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer

from otel_diag.config import load_settings
from otel_diag.export.exporter import ErrorLogSpanExporter
from otel_diag.store.engine import TenantDBManager

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


@pytest.fixture
def make_pg_database(pg_admin: str) -> Iterator[Callable[[], str]]:
    """Factory: a new empty database per call, as a ``postgresql+psycopg://`` URL."""
    created: list[str] = []

    def make() -> str:
        name = f"otel_diag_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        base = pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{name}"

    yield make
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    """A fresh database URL: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'otel_diag.db'}"
    return request.getfixturevalue("make_pg_database")()


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
