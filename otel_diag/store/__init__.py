"""The store: models, per-tenant engines, migrations, bulk writes and read queries.

Only this package imports SQLAlchemy.
"""
