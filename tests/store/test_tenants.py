"""Tenant isolation and validation: a tenant's engine never sees another tenant's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from otel_diag.spans.from_sdk import from_readable_span
from otel_diag.store.sink import SpanSink
from otel_diag.store.sql import migrate
from otel_diag.store.sql.engine import (
    InvalidTenantError,
    TenantDBManager,
    tenant_url,
    validate_tenant_id,
)
from otel_diag.store.sql.models import runs
from tests.factories import agent_trace


def run_count(manager: TenantDBManager, tenant: str) -> int:
    with manager.get_engine(tenant).connect() as conn:
        return conn.execute(select(func.count()).select_from(runs)).scalar_one()


def records(**kw):
    return [r for r in map(from_readable_span, agent_trace(**kw)) if r is not None]


def test_each_tenant_has_its_own_database_or_schema(manager):
    sink = SpanSink(manager)
    sink.write(records(failing=True), tenant="acme")
    sink.write(records(failing=True), tenant="acme")
    sink.write(records(failing=True), tenant="globex")

    assert run_count(manager, "acme") == 2
    assert run_count(manager, "globex") == 1
    assert run_count(manager, "default") == 0


def test_spans_go_to_the_tenant_they_name_unless_a_tenant_is_forced(manager):
    sink = SpanSink(manager)
    recs = records(failing=True)
    for rec in recs:
        rec.tenant_id = "acme"
    sink.write(recs)
    sink.write(records(failing=True), tenant="globex")
    assert (run_count(manager, "acme"), run_count(manager, "globex")) == (1, 1)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Acme",
        "../etc",
        "a;drop table runs",
        "a b",
        "-lead",
        "trail-",
        "x" * 49,
        "tenant\x00",
        7,
    ],
)
def test_invalid_tenant_ids_raise_a_clear_error(bad, manager):
    with pytest.raises(InvalidTenantError, match="invalid tenant id"):
        validate_tenant_id(bad)
    with pytest.raises(InvalidTenantError):
        manager.get_engine(bad)


@pytest.mark.parametrize("good", ["default", "acme", "acme-corp", "team_7", "a", "0" * 48])
def test_valid_tenant_ids_are_accepted(good):
    assert validate_tenant_id(good) == good


def test_sqlite_tenants_are_sibling_files_and_url_templates_are_honoured():
    assert tenant_url("sqlite:////data/otel_diag.db", "default") == "sqlite:////data/otel_diag.db"
    assert tenant_url("sqlite:////data/otel_diag.db", "acme") == "sqlite:////data/otel_diag.acme.db"
    assert (
        tenant_url("postgresql+psycopg://h/db_{tenant}", "acme") == "postgresql+psycopg://h/db_acme"
    )


def test_migrations_create_every_table_and_are_idempotent(manager):
    engine = manager.get_engine("acme")
    assert set(inspect(engine).get_table_names()) >= {
        "runs",
        "steps",
        "error_logs",
        "diagnostic_reports",
        "alembic_version",
    }
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.upgrade(engine)  # again: a no-op
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_two_managers_migrating_the_same_database_at_once_both_succeed(db_url):
    import threading
    import traceback

    managers = [TenantDBManager(db_url) for _ in range(2)]
    errors: list[str] = []

    def open_engine(m: TenantDBManager) -> None:
        try:
            m.get_engine("shared")
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=open_engine, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for m in managers:
        m.dispose()
    assert errors == [], errors[0]
