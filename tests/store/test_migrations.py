"""The schema's head revision, recognised cheaply: a migrated database opens without Alembic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otel_diag.store.sql import migrate


def test_the_head_constant_is_alembics_head() -> None:
    """A new migration must move :data:`migrate.HEAD` with it, or databases stop upgrading."""
    assert migrate.head_revision() == migrate.HEAD


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_opening_a_migrated_database_does_not_load_alembic(db_url: str) -> None:
    probe = (
        "import sys\n"
        "from otel_diag.config import load_settings\n"
        "from otel_diag.store.sql.engine import TenantDBManager\n"
        f"manager = TenantDBManager({db_url!r}, load_settings(database_url={db_url!r}))\n"
        "manager.get_engine()\n"
        "manager.dispose()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)
def test_a_new_database_is_still_migrated_to_head(empty_db_url: str) -> None:
    from otel_diag.config import load_settings
    from otel_diag.store.sql.engine import TenantDBManager

    manager = TenantDBManager(empty_db_url, load_settings(database_url=empty_db_url))
    try:
        assert migrate.current_revision(manager.get_engine()) == migrate.HEAD
    finally:
        manager.dispose()
