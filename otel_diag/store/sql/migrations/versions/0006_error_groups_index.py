"""Indexes for error groups: error_logs by (fingerprint, created_at), reports by created_at.

An error group's first, last and latest occurrence are then index endpoint lookups, not a
scan of every occurrence of the group (20k each in the 1M-row benchmark); the wider index
replaces the narrower one, so writes keep one index. A group's latest diagnosis is found
by walking reports newest first (few next to error rows) until one's run has the group.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_error_logs_fingerprint_created", "error_logs", ["fingerprint", "created_at"]
    )
    op.drop_index("ix_error_logs_fingerprint", table_name="error_logs")
    op.create_index("ix_diagnostic_reports_created", "diagnostic_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_diagnostic_reports_created", table_name="diagnostic_reports")
    op.create_index("ix_error_logs_fingerprint", "error_logs", ["fingerprint"])
    op.drop_index("ix_error_logs_fingerprint_created", table_name="error_logs")
