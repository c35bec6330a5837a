"""trace_runs: trace id -> named run, for trace assembly by primary key.

Replaces a lookup that scanned ``steps`` by trace id (unindexed, so it grew with the
table). Existing traces are back-filled from ``runs.trace_id``.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO trace_runs (id, run_id) SELECT trace_id, MIN(id) FROM runs GROUP BY trace_id"
        if op.get_bind().dialect.name == "sqlite"
        else "INSERT INTO trace_runs (id, run_id) "
        "SELECT DISTINCT ON (trace_id) trace_id, id FROM runs ORDER BY trace_id, started_at"
    )


def downgrade() -> None:
    op.drop_table("trace_runs")
