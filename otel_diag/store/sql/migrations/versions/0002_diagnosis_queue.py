"""Diagnosis queue: an index for claiming ready runs, and why a report fell back to rules.

``ix_runs_diagnosis_queue`` (diagnosis_state, last_span_at) keeps the batch processor's
claim query proportional to the runs waiting for a diagnosis, not to every failed run ever
stored. ``diagnostic_reports.fallback_reason`` says why a report came from the rules
(``mode_rules``, ``timeout``, ``invalid_json``, ``unknown_step``, ``spend_cap``, ...).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("diagnostic_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fallback_reason", sa.String(length=64), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_runs_diagnosis_queue", ["diagnosis_state", "last_span_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_diagnosis_queue")
    with op.batch_alter_table("diagnostic_reports", schema=None) as batch_op:
        batch_op.drop_column("fallback_reason")
