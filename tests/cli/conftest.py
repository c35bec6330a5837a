"""A seeded store per module (SQLite and PostgreSQL) and a way to run CLI commands on it.

The reporting commands only read, so one seeded database serves a whole test module: it is
filled once through the real exporter (:mod:`tests.cli.seed`) and dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from click.testing import CliRunner, Result

from otel_diag.cli import main
from otel_diag.config import load_settings
from tests.cli.seed import Expected, exporting_tracer, seed_fleet


@dataclass
class Fleet:
    url: str
    backend: str
    expected: Expected


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("fleet")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'otel_diag.db'}"
    else:
        admin = request.getfixturevalue("pg_admin")
        name = f"otel_diag_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = (
            admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            + f"/{name}"
        )
    settings = load_settings(env={}, database_url=url, home=home)
    with exporting_tracer(url, settings) as tracer:
        expected = seed_fleet(tracer)
    yield Fleet(url, request.param, expected)
    if admin is not None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


Invoke = Callable[..., Result]


@pytest.fixture
def cli(fleet: Fleet) -> Invoke:
    """``cli("runs", "--json")`` runs ``otel-diag runs --json --database-url <fleet>``."""

    def invoke(*args: str, database_url: str | None = None) -> Result:
        argv = [*args, "--database-url", database_url or fleet.url]
        return CliRunner().invoke(main, argv, catch_exceptions=False)

    return invoke


def run_cli(*args: str) -> Result:
    """Run ``otel-diag`` with exactly ``args`` (no database added)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)
