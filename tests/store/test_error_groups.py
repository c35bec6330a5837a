"""Error groups: one group per error shape across runs, whatever ids the messages carry."""

from __future__ import annotations

import functools
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

from otel_diag.classify import fingerprint
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.port import Storage
from tests.factories import make_span

HOUR = 3600 * 10**9

SHAPES = [
    "sku {n} out of stock in warehouse {uuid}",
    "order {n} rejected: card {hex} declined",
    "GET https://api.example.com/v1/items/{n}?page={n} returned 503",
    "cannot open /var/data/{hex}/part-{n}.parquet",
    "user {email} not found",
    "tool 'search_{hex}' timed out after {f}s",
    "rate limited, retry in {f}s (request req_{hex})",
    "expected 2 arguments, got {n}",
    "model gpt-4o-mini-{n} refused prompt {uuid}",
    "context length {n} exceeds {n} tokens",
    "warehouse {hex} unreachable at 10.0.{n}.{n}:5432",
    "parse error at line {n} column {n}",
    "missing field `{word}` in payload {uuid}",
    "lock {hex} held by worker-{n} for {f}s",
    'invalid date "{word}" for field due',
    "quota of {n} requests per minute exceeded for key …{hex}",
    "sandbox C:\\jobs\\{hex}\\run-{n}.log is read-only",
    "checksum mismatch {hex} != {hex}",
    "agent loop exceeded {n} steps in run {uuid}",
    "connection reset by peer (errno {n})",
]


def message(shape: str, rng: random.Random) -> str:
    return shape.format(
        n=rng.randint(0, 10**6),
        uuid=uuid.UUID(int=rng.getrandbits(128)),
        hex=format(rng.getrandbits(rng.choice((32, 48, 64))), "08x"),
        email=f"u{rng.randint(0, 999)}@example.com",
        f=round(rng.uniform(0, 99), 2),
        word=rng.choice(["tomorrow", "yesterday", "31/02", "someday"]),
    )


def test_ten_thousand_messages_of_twenty_shapes_with_random_ids_have_twenty_fingerprints():
    rng = random.Random(3)
    prints = {
        fingerprint("tool", "internal", "Exception", "step", message(shape, rng))
        for _ in range(500)
        for shape in SHAPES
    }

    assert len(prints) == len(SHAPES)


@functools.cache
def resource(service: str) -> Resource:
    return Resource.create({"service.name": service})


def failed_run(
    text: str,
    at_ns: int,
    *,
    step: str = "search",
    service: str = "svc",
    agent: str = "agent",
    error_type: str = "Exception",
) -> list[ReadableSpan]:
    """An agent span whose tool call failed with ``text`` (the agent caught it)."""
    agent_span = make_span(
        f"invoke_agent {agent}",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent},
        start_ns=at_ns,
        resource=resource(service),
    )
    tool = make_span(
        f"execute_tool {step}",
        trace_id=agent_span.context.trace_id,
        parent_id=agent_span.context.span_id,
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": step},
        start_ns=at_ns,
        status=StatusCode.ERROR,
        events=[
            Event(
                "exception",
                {"exception.type": error_type, "exception.message": text},
                timestamp=at_ns + 1,
            )
        ],
        resource=resource(service),
    )
    return [tool, agent_span]


def test_errors_of_twenty_shapes_stored_with_random_ids_make_twenty_groups(store_exporter, storage):
    rng = random.Random(11)
    now = time.time_ns()
    # FerretDB's SQLite handler scans a collection for most queries: fewer runs there.
    per_shape = 20 if storage.base_url.startswith("mongodb") else 100
    spans = [
        span
        for i in range(20 * per_shape)
        for span in failed_run(message(SHAPES[i % len(SHAPES)], rng), now - i * 1_000_000)
    ]
    for i in range(0, len(spans), 512):
        store_exporter.export(spans[i : i + 512])

    groups = storage.tenant().error_groups(limit=100)

    assert len(groups) == 20
    assert sorted(g.occurrences for g in groups) == [per_shape] * 20
    assert all(g.runs_affected == per_shape for g in groups)


def test_a_group_reports_where_and_since_when_it_happens(
    store_exporter: ErrorLogSpanExporter, storage: Storage
):
    now = time.time_ns()
    for spans in (
        failed_run("sku 1 out of stock", now - 48 * HOUR, service="shop", agent="buyer"),
        failed_run("sku 22 out of stock", now - 2 * HOUR, service="shop", agent="seller"),
        failed_run("sku 333 out of stock", now - HOUR, service="depot", agent="buyer"),
        failed_run("card declined", now - HOUR, step="charge", service="shop"),
    ):
        store_exporter.export(spans)

    store = storage.tenant()
    day = datetime.now(UTC) - timedelta(hours=24)
    groups = store.error_groups(since=day)
    only_depot = store.error_groups(since=day, service="depot")
    sellers = store.error_groups(agent="seller")
    second_page = store.error_groups(since=day, limit=1, offset=1)

    stock = groups[0]
    assert (stock.occurrences, stock.runs_affected) == (2, 2)  # in the window
    assert stock.message == "sku 333 out of stock"  # the latest occurrence
    assert stock.first_seen < datetime.now(UTC) - timedelta(hours=47)  # first ever
    assert stock.services == ("depot", "shop") and stock.agents == ("buyer", "seller")
    assert [g.step_name for g in groups] == ["search", "charge"]
    assert [(g.step_name, g.occurrences) for g in only_depot] == [("search", 1)]
    assert [(g.step_name, g.occurrences) for g in sellers] == [("search", 1)]
    assert [g.step_name for g in second_page] == ["charge"]


def test_new_and_regressed_groups_are_told_apart(store_exporter, storage):
    now = time.time_ns()
    for spans in (
        failed_run("disk full on node 3", now - 30 * 24 * HOUR, step="store"),
        failed_run("disk full on node 4", now - HOUR // 2, step="store"),  # back after 30 days
        failed_run("flaky 1", now - 2 * HOUR, step="poll"),
        failed_run("flaky 2", now - HOUR // 4, step="poll"),  # never quiet for long
        failed_run("brand new thing", now - HOUR // 3, step="fresh"),
    ):
        store_exporter.export(spans)
    since = datetime.now(UTC) - timedelta(hours=1)

    new = storage.tenant().new_error_groups(since)
    back = storage.tenant().regressed_error_groups(since, quiet=timedelta(days=7))

    assert [g.step_name for g in new] == ["fresh"]
    assert [g.step_name for g in back] == ["store"]
    assert back[0].first_seen < since - timedelta(days=29)
