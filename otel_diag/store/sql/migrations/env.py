"""Alembic environment: always driven programmatically by :mod:`otel_diag.store.sql.migrate`.

The caller hands over an open connection (``config.attributes["connection"]``) whose
``search_path`` already points at the tenant's schema on PostgreSQL, so one set of
migrations serves every tenant.
"""

from alembic import context

from otel_diag.store.sql.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from the alembic CLI
    raise RuntimeError("otel-diag migrations run through otel_diag.store.sql.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
