"""One failure, one error row: propagation recorded instead of copied.

Adds ``error_logs.parent_span_id / exception_key / recorded_as / propagated_to``, an index
on ``error_logs.trace_id`` and the ``error_propagations`` table, then turns the copies that
earlier versions stored (the same exception on every span it propagated through) into the
new shape with the same rules as ingest (:mod:`otel_diag.projection.propagation`), and
recomputes fingerprints with the message masks of this version (URLs, paths, every word with
a digit), so old and new occurrences of one error fall into one error group. Parent
links of stored errors come from ``steps``; a workflow root's errors are found through
the links of the steps beneath it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import re
from datetime import UTC

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from otel_diag.classify import fingerprint
from otel_diag.projection.propagation import (
    EVENT,
    STATUS,
    Recorded,
    exception_key,
    resolve,
    status_key,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_BARE = re.compile(r"^span '.*' ended with status ERROR$", re.S)
_CHUNK = 500


def _key(error_type: str, message: str) -> tuple[str, str]:
    if error_type == "SpanError":  # earlier versions' name for a status-only error
        return STATUS, status_key("" if _BARE.match(message or "") else message, None)
    return EVENT, exception_key(error_type, message)


def upgrade() -> None:
    with op.batch_alter_table("error_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_span_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("exception_key", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("recorded_as", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("propagated_to", _JSON, nullable=True))
        batch_op.create_index("ix_error_logs_trace", ["trace_id"], unique=False)
    op.create_table(
        "error_propagations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("origin_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("step_name", sa.String(length=256), nullable=True),
        sa.Column("exception_key", sa.String(length=16), nullable=False),
        sa.Column("recorded_as", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_error_propagations_trace", "error_propagations", ["trace_id"])
    _backfill(op.get_bind())


# The tables as this revision knows them (the models may change later; this must not).
_META = sa.MetaData()
_RUNS = sa.Table("runs", _META, sa.Column("id", sa.Uuid()), sa.Column("error_count", sa.Integer()))
_STEPS = sa.Table(
    "steps",
    _META,
    sa.Column("id", sa.Uuid()),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("span_id", sa.String(16)),
    sa.Column("parent_span_id", sa.String(16)),
)
_ERRORS = sa.Table(
    "error_logs",
    _META,
    sa.Column("id", sa.Uuid()),
    sa.Column("run_id", sa.Uuid()),
    sa.Column("step_id", sa.Uuid()),
    sa.Column("step_name", sa.String(256)),
    sa.Column("source", sa.String(16)),
    sa.Column("error_category", sa.String(32)),
    sa.Column("error_type", sa.String(256)),
    sa.Column("error_message", sa.Text()),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("span_id", sa.String(16)),
    sa.Column("parent_span_id", sa.String(16)),
    sa.Column("exception_key", sa.String(16)),
    sa.Column("recorded_as", sa.String(8)),
    sa.Column("propagated_to", _JSON),
    sa.Column("fingerprint", sa.String(64)),
)
_COPIES = sa.Table(
    "error_propagations",
    _META,
    *(
        sa.Column(name, kind)
        for name, kind in (
            ("id", sa.Uuid()),
            ("origin_id", sa.Uuid()),
            ("trace_id", sa.String(32)),
            ("span_id", sa.String(16)),
            ("parent_span_id", sa.String(16)),
            ("step_name", sa.String(256)),
            ("exception_key", sa.String(16)),
            ("recorded_as", sa.String(8)),
            ("created_at", sa.DateTime(timezone=True)),
        )
    ),
)


def _backfill(conn: sa.Connection) -> None:
    errors, steps = _ERRORS, _STEPS
    conn.execute(
        errors.update().values(
            parent_span_id=sa.select(steps.c.parent_span_id)
            .where(steps.c.id == errors.c.step_id)
            .scalar_subquery()
        )
    )
    keys = []
    columns = ("id", "source", "error_category", "error_type", "step_name", "error_message")
    for row in conn.execute(sa.select(*(errors.c[c] for c in columns))):
        recorded_as, key = _key(row.error_type, row.error_message)
        shape = fingerprint(
            row.source, row.error_category, row.error_type, row.step_name, row.error_message
        )
        keys.append({"b_id": row.id, "b_as": recorded_as, "b_key": key, "b_fp": shape})
    if keys:
        conn.execute(
            errors.update()
            .where(errors.c.id == sa.bindparam("b_id"))
            .values(
                recorded_as=sa.bindparam("b_as"),
                exception_key=sa.bindparam("b_key"),
                fingerprint=sa.bindparam("b_fp"),
            ),
            keys,
        )
    traces = [
        t
        for (t,) in conn.execute(
            sa.select(errors.c.trace_id).group_by(errors.c.trace_id).having(sa.func.count() > 1)
        )
    ]
    for i in range(0, len(traces), _CHUNK):
        _settle(conn, traces[i : i + _CHUNK])


def _settle(conn: sa.Connection, traces: list[str]) -> None:
    errors = _ERRORS
    links: dict[str, dict[str, str | None]] = {}
    for trace_id, span_id, parent in conn.execute(
        sa.select(_STEPS.c.trace_id, _STEPS.c.span_id, _STEPS.c.parent_span_id).where(
            _STEPS.c.trace_id.in_(traces)
        )
    ):
        links.setdefault(trace_id, {})[span_id] = parent
    rows: dict[str, list[sa.Row]] = {}
    for row in conn.execute(sa.select(errors).where(errors.c.trace_id.in_(traces))):
        rows.setdefault(row.trace_id, []).append(row)
    recount: set[object] = set()
    for trace_id, trace_rows in rows.items():
        chains = resolve(
            (
                Recorded(
                    id=r.id,
                    span_id=r.span_id,
                    parent_span_id=r.parent_span_id,
                    key=r.exception_key,
                    time=r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
                    step_name=r.step_name,
                    origin=r.recorded_as,
                )
                for r in trace_rows
            ),
            links.get(trace_id, {}),
        )
        moved = [r for r in trace_rows if r.id in chains.origin_of]
        if moved:
            conn.execute(
                _COPIES.insert(),
                [
                    {
                        "id": r.id,
                        "origin_id": chains.origin_of[r.id],
                        "trace_id": r.trace_id,
                        "span_id": r.span_id,
                        "parent_span_id": r.parent_span_id,
                        "step_name": r.step_name,
                        "exception_key": r.exception_key,
                        "recorded_as": r.recorded_as,
                        "created_at": r.created_at,
                    }
                    for r in moved
                ],
            )
            conn.execute(errors.delete().where(errors.c.id.in_([r.id for r in moved])))
            recount.update(r.run_id for r in moved)
        for origin_id, names in chains.propagated_to.items():
            conn.execute(
                errors.update().where(errors.c.id == origin_id).values(propagated_to=list(names))
            )
    for run_id in recount:
        count = sa.select(sa.func.count()).where(errors.c.run_id == run_id).scalar_subquery()
        conn.execute(_RUNS.update().where(_RUNS.c.id == run_id).values(error_count=count))


def downgrade() -> None:
    op.drop_index("ix_error_propagations_trace", table_name="error_propagations")
    op.drop_table("error_propagations")
    with op.batch_alter_table("error_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_error_logs_trace")
        batch_op.drop_column("propagated_to")
        batch_op.drop_column("recorded_as")
        batch_op.drop_column("exception_key")
        batch_op.drop_column("parent_span_id")
