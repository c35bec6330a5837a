"""Create or upgrade a tenant's schema with Alembic, safely from several processes.

PostgreSQL: a transaction-scoped advisory lock serializes replicas that start together.
SQLite: ``BEGIN IMMEDIATE`` takes the write lock before Alembic looks at the version table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from otel_diag.logs import hold_alembic
from otel_diag.store.sql.transactions import write_transaction

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0007"
"""The newest migration's revision, so a database already at head is recognised with one
query and without loading Alembic and every migration script (~0.2 s on each command and
each tenant opened). ``tests/store/test_migrations.py`` holds it equal to Alembic's head."""
hold_alembic()  # before any alembic import: it logs a line per plugin as it loads
_ADVISORY_KEY = 0x6F74656C64696167  # "oteldiag"


# Alembic is imported inside the functions: it costs ~150 ms and is needed only when a
# schema is checked or upgraded, not by every command that merely imports the store.


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the schema is at head and its tables are there (False when it cannot tell)."""
    try:
        if current_revision(engine) != head_revision():
            return False
        with engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM trace_runs WHERE 1 = 0"))
            conn.execute(text("SELECT 1 FROM error_logs WHERE 1 = 0"))
    except Exception:
        return False
    return True


def _at_head(engine: Engine) -> bool:
    """Whether the version table says :data:`HEAD` (False when there is none yet)."""
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:  # no version table: a new database, which Alembic will create
        return False
    return found == [HEAD]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the engine's database (schema) to ``revision``; a no-op when already there."""
    if revision == "head" and _at_head(engine):
        return
    from alembic import command

    cfg = alembic_config()
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = 0"))  # big back-fills
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
