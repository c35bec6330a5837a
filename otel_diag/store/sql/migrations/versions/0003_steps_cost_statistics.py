"""Extended statistics for the cost query's groups (PostgreSQL only).

``otel-diag cost`` groups the steps of a window by (UTC day, model, cost source). Without
statistics on that expression PostgreSQL guesses one group per row, plans a partitioned
hash aggregate with JIT and no parallelism, and a 1M-step window takes ~2x longer. The
statistics object gives it the real number of groups (tens), so it aggregates in parallel
workers. The expression must stay identical to ``store.sql.expressions.day_bucket``. SQLite
needs nothing.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATISTICS = "st_steps_cost_groups"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} "
        "ON (date_trunc('day', timezone('UTC', started_at))), model, cost_source FROM steps"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
