"""The SQL storage: SQLite (embedded default) and PostgreSQL behind one implementation.

Models and Alembic migrations, per-tenant engines, bulk writes, the diagnosis queue and the
read queries; the dialect differences live here and nowhere else. The rest of otel-diag
reaches it only through :mod:`otel_diag.store.port`.
"""
