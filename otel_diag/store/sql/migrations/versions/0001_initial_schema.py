"""Initial schema: runs, steps, error_logs, diagnostic_reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:20:06.954550
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "diagnostic_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("root_cause_analysis", sa.Text(), nullable=False),
        sa.Column(
            "recommended_actions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("resume_step", sa.String(length=256), nullable=True),
        sa.Column("confidence_score", sa.Float(), nullable=False),
        sa.Column("error_category", sa.String(length=32), nullable=True),
        sa.Column("llm_provider", sa.String(length=64), nullable=False),
        sa.Column("llm_model", sa.String(length=128), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("reused_from", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("diagnostic_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_diagnostic_reports_fingerprint", ["fingerprint", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_diagnostic_reports_run_created", ["run_id", "created_at"], unique=False
        )

    op.create_table(
        "error_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("step_id", sa.Uuid(), nullable=True),
        sa.Column("step_name", sa.String(length=256), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("error_category", sa.String(length=32), nullable=False),
        sa.Column("error_type", sa.String(length=256), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("stack_trace", sa.Text(), nullable=True),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("error_logs", schema=None) as batch_op:
        batch_op.create_index("ix_error_logs_created", ["created_at"], unique=False)
        batch_op.create_index("ix_error_logs_fingerprint", ["fingerprint"], unique=False)
        batch_op.create_index("ix_error_logs_run_created", ["run_id", "created_at"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("service_name", sa.String(length=256), nullable=True),
        sa.Column("agent_name", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("root_seen", sa.Boolean(), nullable=False),
        sa.Column("root_failed", sa.Boolean(), nullable=False),
        sa.Column("step_count", sa.Integer(), nullable=False),
        sa.Column("llm_calls", sa.Integer(), nullable=False),
        sa.Column("tool_calls", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("unpriced_tokens", sa.BigInteger(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_span_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("diagnosis_state", sa.String(length=16), nullable=True),
        sa.Column("diagnosis_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("diagnosis_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("diagnosis_claimed_by", sa.String(length=128), nullable=True),
        sa.Column("diagnosed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_runs_status_last_span", ["status", "last_span_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_trace_id"), ["trace_id"], unique=False)

    op.create_table(
        "steps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("step_name", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("cost_reported_usd", sa.Float(), nullable=True),
        sa.Column("cost_computed_usd", sa.Float(), nullable=True),
        sa.Column("cost_source", sa.String(length=16), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.create_index("ix_steps_run_started", ["run_id", "started_at"], unique=False)
        batch_op.create_index("ix_steps_started_model", ["started_at", "model"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_index("ix_steps_started_model")
        batch_op.drop_index("ix_steps_run_started")

    op.drop_table("steps")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_trace_id"))
        batch_op.drop_index("ix_runs_status_last_span")
        batch_op.drop_index("ix_runs_started_at")

    op.drop_table("runs")
    with op.batch_alter_table("error_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_error_logs_run_created")
        batch_op.drop_index("ix_error_logs_fingerprint")
        batch_op.drop_index("ix_error_logs_created")

    op.drop_table("error_logs")
    with op.batch_alter_table("diagnostic_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_diagnostic_reports_run_created")
        batch_op.drop_index("ix_diagnostic_reports_fingerprint")

    op.drop_table("diagnostic_reports")
