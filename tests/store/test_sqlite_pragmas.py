"""SQLite connections of the store: WAL, no sync per commit, and a checkpoint interval sized
for ingest (each checkpoint syncs the database file; the default 1,000 pages made them most
of a commit's time)."""

from __future__ import annotations

from pathlib import Path

from otel_diag.config import load_settings
from otel_diag.store.sql.engine import WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT, TenantDBManager


def test_every_sqlite_connection_gets_the_ingest_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    manager = TenantDBManager(url, load_settings(database_url=url))
    try:
        with manager.get_engine().connect() as conn:

            def pragma(name: str) -> object:
                return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

            assert str(pragma("journal_mode")).lower() == "wal"
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("wal_autocheckpoint") == WAL_CHECKPOINT_PAGES > 1000
            assert pragma("journal_size_limit") == WAL_SIZE_LIMIT
    finally:
        manager.dispose()
