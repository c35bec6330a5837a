"""error_group_hours: per-hour error-group rollups, back-filled from error_logs.

Error-group pages ranked occurrences and counted distinct runs over every row of their
window (3 s at a million rows); the writer now keeps per-hour counts instead
(:mod:`otel_diag.store.sql.group_hours`). Existing rows are counted once here. The index
on ``error_logs (run_id, fingerprint, created_at)`` lets the writer read only the rows a
write changes, however many errors the run already has.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from otel_diag.store.sql import group_hours

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "error_group_hours",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("service_name", sa.String(length=256), nullable=False),
        sa.Column("agent_name", sa.String(length=256), nullable=False),
        sa.Column("occurrences", sa.BigInteger(), nullable=False),
        sa.Column("runs_last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", "hour", "service_name", "agent_name"),
    )
    op.create_index("ix_error_group_hours_hour", "error_group_hours", ["hour"])
    # The writer reads a (run, group)'s rows of the hours it changes and its last one.
    op.create_index(
        "ix_error_logs_run_fingerprint_created",
        "error_logs",
        ["run_id", "fingerprint", "created_at"],
    )
    group_hours.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_error_logs_run_fingerprint_created", table_name="error_logs")
    op.drop_index("ix_error_group_hours_hour", table_name="error_group_hours")
    op.drop_table("error_group_hours")
