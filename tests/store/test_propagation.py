"""One failure, one error row, however the spans of a trace arrive (SQLite and PostgreSQL).

The spans come from the real OpenTelemetry SDK: ``start_as_current_span`` records an
exception on every span it leaves, exactly as an app's tool -> agent -> workflow nesting
does, and the real exporter stores them in batches of every shape.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select

from otel_diag.projection.ids import run_uuid
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.models import error_logs, error_propagations, runs

EXPECTED = [
    ("search", 1, None),
    ("search", 2, None),
    ("search", 3, ["planner", "invoke_workflow trip"]),
]
"""Three failed attempts of the tool; the last one's exception escaped through two spans."""


def failing_run(run_id: str, *, attempts: int = 3) -> list[ReadableSpan]:
    """workflow -> agent -> tool, the tool failing ``attempts`` times; the last escapes."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("propagation-tests")
    workflow = {"otel_diag.run.id": run_id, "gen_ai.operation.name": "invoke_workflow"}
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    with (
        pytest.raises(ConnectionError),
        tracer.start_as_current_span("invoke_workflow trip", attributes=workflow),
        tracer.start_as_current_span("invoke_agent planner", attributes=agent),
    ):
        for attempt in range(1, attempts + 1):
            try:
                with tracer.start_as_current_span(
                    "execute_tool search",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "search",
                        "otel_diag.step.attempt": attempt,
                    },
                ):
                    raise ConnectionError("upstream unreachable")
            except ConnectionError:
                if attempt == attempts:
                    raise
    provider.shutdown()
    return list(memory.get_finished_spans())


def stored(manager: TenantDBManager, run_id: str) -> tuple[list[tuple[Any, ...]], int]:
    """(step, attempt, propagated_to) of the run's error rows, and its error_count."""
    rid = run_uuid(run_id, "")
    with manager.get_engine().connect() as conn:
        rows = conn.execute(
            select(error_logs.c.step_name, error_logs.c.attempt, error_logs.c.propagated_to)
            .where(error_logs.c.run_id == rid)
            .order_by(error_logs.c.attempt)
        ).all()
        count = conn.execute(select(runs.c.error_count).where(runs.c.id == rid)).scalar_one()
    return [tuple(r) for r in rows], count


def batches(spans: Sequence[ReadableSpan], rng: random.Random) -> list[list[ReadableSpan]]:
    order = list(spans)
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
    return [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]


def test_a_propagated_exception_with_retries_is_one_row_per_attempt(exporter, manager):
    exporter.export(failing_run("run-1"))

    assert stored(manager, "run-1") == (EXPECTED, 3)


@pytest.mark.parametrize(
    "arrival",
    ["children first, one batch each", "parents first, one batch each", "parents first"],
)
def test_parents_arriving_before_their_children_converge_to_the_same_rows(
    exporter: ErrorLogSpanExporter, manager: TenantDBManager, arrival: str
) -> None:
    spans = failing_run("run-2")  # the SDK's order: children end (and export) first
    if arrival.startswith("parents first"):
        spans = spans[::-1]
    parts = [[s] for s in spans] if arrival.endswith("one batch each") else [spans]

    for part in parts:
        exporter.export(part)

    assert stored(manager, "run-2") == (EXPECTED, 3)


def test_any_order_and_grouping_of_arrival_gives_the_same_rows(exporter, manager):
    rng = random.Random(7)
    for case in range(6):
        run_id = f"shuffled-{case}"
        for part in batches(failing_run(run_id), rng):
            exporter.export(part)

        assert stored(manager, run_id) == (EXPECTED, 3), case


def test_re_sending_a_trace_in_any_order_changes_nothing(exporter, manager):
    spans = failing_run("run-3")
    exporter.export(spans)
    with manager.get_engine().connect() as conn:
        copies = conn.execute(select(func.count()).select_from(error_propagations)).scalar_one()

    exporter.export(spans[::-1])
    for span in spans:
        exporter.export([span])

    assert stored(manager, "run-3") == (EXPECTED, 3)
    with manager.get_engine().connect() as conn:
        again = conn.execute(select(func.count()).select_from(error_propagations)).scalar_one()
    assert copies == again == 2


def test_a_parent_failing_with_a_different_exception_is_a_second_failure(tracer, manager):
    run_id = str(uuid.uuid4())
    with (
        pytest.raises(RuntimeError),
        tracer.start_as_current_span(
            "invoke_workflow trip",
            attributes={"otel_diag.run.id": run_id, "gen_ai.operation.name": "invoke_workflow"},
        ),
    ):
        try:
            with tracer.start_as_current_span(
                "execute_tool search",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "search",
                },
            ):
                raise ConnectionError("upstream unreachable")
        except ConnectionError as exc:
            raise RuntimeError("search failed, giving up") from exc

    rows, count = stored(manager, run_id)

    assert count == 2
    assert sorted(r[0] for r in rows) == ["invoke_workflow trip", "search"]
    assert all(r[2] is None for r in rows)
