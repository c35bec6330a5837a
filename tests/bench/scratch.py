"""Scratch PostgreSQL databases for benchmarks: created fresh, always dropped."""

from __future__ import annotations

import os
import uuid

import psycopg

PG_ADMIN = os.environ.get(
    "OTEL_DIAG_TEST_PG", "postgresql://otel_diag_test:test-only-pw@127.0.0.1:5432/postgres"
)


def create_pg_database() -> tuple[str, str]:
    """A new empty database: ``(name, postgresql+psycopg:// URL)``."""
    name = f"otel_diag_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
