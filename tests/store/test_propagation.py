"""One failure, one error row, however the spans of a trace arrive (SQLite, PostgreSQL, MongoDB).

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

from otel_diag.projection.ids import run_uuid
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.port import Storage

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


def stored(storage: Storage, run_id: str) -> tuple[list[tuple[Any, ...]], int]:
    """(step, attempt, propagated_to) of the run's error rows, and its error_count."""
    store = storage.tenant()
    rid = run_uuid(run_id, "")
    rows = sorted(store.errors(rid), key=lambda e: e.attempt)
    run = store.run(rid)
    assert run is not None
    out = [
        (e.step_name, e.attempt, list(e.propagated_to) if e.propagated_to else None) for e in rows
    ]
    return out, run.error_count


def batches(spans: Sequence[ReadableSpan], rng: random.Random) -> list[list[ReadableSpan]]:
    order = list(spans)
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
    return [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]


def test_a_propagated_exception_with_retries_is_one_row_per_attempt(store_exporter, storage):
    store_exporter.export(failing_run("run-1"))

    assert stored(storage, "run-1") == (EXPECTED, 3)


@pytest.mark.parametrize(
    "arrival",
    ["children first, one batch each", "parents first, one batch each", "parents first"],
)
def test_parents_arriving_before_their_children_converge_to_the_same_rows(
    store_exporter: ErrorLogSpanExporter, storage: Storage, arrival: str
) -> None:
    spans = failing_run("run-2")  # the SDK's order: children end (and export) first
    if arrival.startswith("parents first"):
        spans = spans[::-1]
    parts = [[s] for s in spans] if arrival.endswith("one batch each") else [spans]

    for part in parts:
        store_exporter.export(part)

    assert stored(storage, "run-2") == (EXPECTED, 3)


def test_any_order_and_grouping_of_arrival_gives_the_same_rows(store_exporter, storage):
    rng = random.Random(7)
    for case in range(6):
        run_id = f"shuffled-{case}"
        for part in batches(failing_run(run_id), rng):
            store_exporter.export(part)

        assert stored(storage, run_id) == (EXPECTED, 3), case


def test_re_sending_a_trace_in_any_order_changes_nothing(store_exporter, storage):
    spans = failing_run("run-3")
    store_exporter.export(spans)
    store = storage.tenant()
    rid = run_uuid("run-3", "")
    first = (store.errors(rid), store.steps(rid), store.error_summary(rid))

    store_exporter.export(spans[::-1])
    for span in spans:
        store_exporter.export([span])

    assert stored(storage, "run-3") == (EXPECTED, 3)
    assert (store.errors(rid), store.steps(rid), store.error_summary(rid)) == first


def test_a_parent_failing_with_a_different_exception_is_a_second_failure(store_tracer, storage):
    run_id = str(uuid.uuid4())
    with (
        pytest.raises(RuntimeError),
        store_tracer.start_as_current_span(
            "invoke_workflow trip",
            attributes={"otel_diag.run.id": run_id, "gen_ai.operation.name": "invoke_workflow"},
        ),
    ):
        try:
            with store_tracer.start_as_current_span(
                "execute_tool search",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "search",
                },
            ):
                raise ConnectionError("upstream unreachable")
        except ConnectionError as exc:
            raise RuntimeError("search failed, giving up") from exc

    rows, count = stored(storage, run_id)

    assert count == 2
    assert sorted(r[0] for r in rows) == ["invoke_workflow trip", "search"]
    assert all(r[2] is None for r in rows)
