"""ErrorLogSpanExporter: failed spans become error rows, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import StatusCode
from sqlalchemy import func, select

from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.models import error_logs, runs, steps
from tests.factories import agent_trace, exception_event, make_span
from tests.prices import cost


def count(manager: TenantDBManager, table, tenant: str | None = None) -> int:
    with manager.get_engine(tenant).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def rows(manager: TenantDBManager, table, tenant: str | None = None) -> list[dict]:
    with manager.get_engine(tenant).connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


def test_a_failing_agent_trace_becomes_a_failed_run_with_steps_and_error_rows(exporter, manager):
    spans = agent_trace(failing=True, run_key="trip-42")

    assert exporter.export(spans) is SpanExportResult.SUCCESS

    (run,) = rows(manager, runs)
    assert run["id"] == uuid.uuid5(uuid.UUID("6f1f3c2e-7d1a-5b8e-9a54-0c7d2e9b4a11"), "trip-42")
    assert run["status"] == "failed"
    assert run["name"] == "invoke_workflow trip"
    assert run["agent_name"] == "planner"
    assert (run["llm_calls"], run["tool_calls"], run["step_count"]) == (4, 4, 9)
    assert run["input_tokens"] == 500 + 501 + 502 + 503
    assert run["output_tokens"] == 60 + 61 + 62 + 63
    assert run["cost_usd"] == pytest.approx(
        cost("gpt-4o-mini", run["input_tokens"], run["output_tokens"])
    )
    errors = rows(manager, error_logs)
    by_step = {e["step_name"]: e for e in errors}
    tool_error = by_step["search"]
    assert tool_error["source"] == "tool"
    assert tool_error["error_category"] == "dependency"
    assert tool_error["error_type"] == "ConnectionError"
    assert tool_error["error_message"] == "upstream unreachable"
    assert tool_error["stack_trace"].startswith("Traceback")
    assert tool_error["trace_id"] == f"{spans[0].context.trace_id:032x}"
    assert tool_error["span_id"] == f"{spans[7].context.span_id:016x}"
    assert tool_error["context"]["gen_ai.tool.name"] == "search"
    # The same exception recorded again by the agent and the workflow span is one failure.
    assert len(errors) == 1
    assert tool_error["propagated_to"] == ["planner", "invoke_workflow trip"]
    assert run["error_count"] == 1


def test_a_successful_trace_stores_steps_but_no_errors(exporter, manager):
    exporter.export(agent_trace(failing=False))

    (run,) = rows(manager, runs)
    assert run["status"] == "ok"
    assert run["error_count"] == 0
    assert count(manager, steps) == 9
    assert count(manager, error_logs) == 0


def test_re_exporting_the_same_spans_adds_no_rows_and_keeps_aggregates(exporter, manager):
    spans = agent_trace(failing=True)
    exporter.export(spans)
    before = (count(manager, runs), count(manager, steps), count(manager, error_logs))
    run_before = rows(manager, runs)[0]

    exporter.export(spans)
    exporter.export(spans[::-1])

    assert (count(manager, runs), count(manager, steps), count(manager, error_logs)) == before
    run_after = rows(manager, runs)[0]
    for key in ("llm_calls", "tool_calls", "input_tokens", "output_tokens", "error_count"):
        assert run_after[key] == run_before[key]
    assert run_after["cost_usd"] == pytest.approx(run_before["cost_usd"])


def test_spans_of_one_trace_arriving_in_several_batches_form_one_run(exporter, manager):
    spans = agent_trace(failing=True, run_key="split-run")
    # Children first (as BatchSpanProcessor delivers them), root last, in three exports.
    for part in (spans[:4], spans[4:8], spans[8:]):
        exporter.export(part)

    (run,) = rows(manager, runs)
    assert run["status"] == "failed"
    assert (run["llm_calls"], run["tool_calls"]) == (4, 4)
    assert run["error_count"] == 1
    (error,) = rows(manager, error_logs)
    assert error["step_name"] == "search"
    assert error["propagated_to"] == ["planner", "invoke_workflow trip"]


def test_children_without_a_run_id_join_the_run_their_root_names_later(exporter, manager):
    spans = agent_trace(failing=True)
    root = spans[-1]
    named_root = make_span(
        root.name,
        trace_id=root.context.trace_id,
        span_id=root.context.span_id,
        attributes={"otel_diag.run.id": "named-later"},
        status=StatusCode.ERROR,
    )
    exporter.export(spans[:-1])  # stored under the trace-id run first
    assert count(manager, runs) == 1

    exporter.export([named_root])

    (run,) = rows(manager, runs)
    assert run["name"] == root.name
    assert run["step_count"] == 9
    # A root that only says ERROR above the failed tool reports the tool's failure.
    assert run["error_count"] == 1
    assert {s["run_id"] for s in rows(manager, steps)} == {run["id"]}
    assert {e["run_id"] for e in rows(manager, error_logs)} == {run["id"]}


def test_a_known_model_is_priced_from_litellms_local_price_map(exporter, manager):
    exporter.export(
        [
            make_span(
                "chat gpt-4o-mini",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1_000_000,
                    "gen_ai.usage.output_tokens": 1_000_000,
                },
            )
        ]
    )
    (step,) = rows(manager, steps)
    assert step["cost_source"] == "computed"
    assert step["cost_usd"] == pytest.approx(0.15 + 0.60)


def test_a_reported_cost_wins_over_the_computed_one_and_both_are_kept(exporter, manager):
    exporter.export(
        [
            make_span(
                "chat gpt-4o-mini",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1_000_000,
                    "gen_ai.usage.output_tokens": 0,
                    "gen_ai.usage.cost": 0.42,
                },
            )
        ]
    )
    (step,) = rows(manager, steps)
    assert step["cost_source"] == "reported"
    assert step["cost_usd"] == pytest.approx(0.42)
    assert step["cost_reported_usd"] == pytest.approx(0.42)
    assert step["cost_computed_usd"] == pytest.approx(0.15)


@pytest.mark.parametrize(
    "cost_attrs",
    [
        {"gen_ai.cost.total_cost": 0.5},  # litellm's OpenTelemetry integration
        {"llm.cost.total": 0.5},  # OpenInference
        {"llm.cost.prompt": 0.2, "llm.cost.completion": 0.3},
    ],
)
def test_cost_attributes_of_other_conventions_are_reported_costs(exporter, manager, cost_attrs):
    exporter.export(
        [
            make_span(
                "ChatCompletion",
                attributes={
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "gpt-4o-mini",
                    "llm.token_count.prompt": 10,
                    "llm.token_count.completion": 5,
                    **cost_attrs,
                },
            )
        ]
    )
    (step,) = rows(manager, steps)
    assert step["kind"] == "llm"
    assert (step["input_tokens"], step["output_tokens"]) == (10, 5)
    assert step["cost_usd"] == pytest.approx(0.5)
    assert step["cost_source"] == "reported"


def test_an_unknown_model_gets_null_cost_and_a_flag_never_a_silent_zero(exporter, manager):
    exporter.export(
        [
            make_span(
                "chat acme-llm-9000",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "acme-llm-9000",
                    "gen_ai.usage.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 20,
                },
                status=StatusCode.ERROR,
                description="boom",
            )
        ]
    )
    (step,) = rows(manager, steps)
    assert step["cost_usd"] is None
    assert step["cost_source"] == "unpriced"
    (run,) = rows(manager, runs)
    assert run["cost_usd"] is None
    assert run["unpriced_tokens"] == 120
    (error,) = rows(manager, error_logs)
    assert error["cost_usd"] is None
    assert (error["model"], error["input_tokens"], error["output_tokens"]) == (
        "acme-llm-9000",
        100,
        20,
    )


SECRETS = [
    "sk-proj-Zx81mQ2vLk39sPq7Rt5wYb0cNd4eFg6h",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "hunter2-db-pass",
]


def all_stored_text(manager: TenantDBManager) -> str:
    """Every value of every row of every table, as one string."""
    parts = []
    for table in (runs, steps, error_logs):
        for row in rows(manager, table):
            parts.extend(repr(v) for v in row.values())
    return "\n".join(parts)


def test_secrets_are_redacted_before_they_are_stored(exporter, manager, db_url):
    message = (
        f"auth failed with key {SECRETS[0]} (aws {SECRETS[1]}), "
        f"header 'Authorization: Bearer {SECRETS[2]}', "
        f"db postgresql://app:{SECRETS[3]}@db.internal/app"
    )
    exporter.export(
        [
            make_span(
                "execute_tool fetch",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "fetch",
                    "http.request.header.authorization": f"Bearer {SECRETS[2]}",
                    "otel_diag.error.context.api_key": SECRETS[0],
                    "url.full": f"https://user:{SECRETS[3]}@api.example.com/v1",
                },
                events=[exception_event("PermissionError", message, f"Traceback:\n{message}\n")],
                status=StatusCode.ERROR,
                description=message,
            )
        ]
    )
    stored = all_stored_text(manager)
    assert "[REDACTED]" in stored
    for secret in SECRETS:
        assert secret not in stored
    if db_url.startswith("sqlite"):
        manager.dispose()  # checkpoint the WAL, then look at the raw bytes on disk
        path = db_url.removeprefix("sqlite:///")
        import pathlib

        raw = b"".join(
            p.read_bytes() for p in pathlib.Path(path).parent.glob("otel_diag.db*") if p.is_file()
        )
        for secret in SECRETS:
            assert secret.encode() not in raw


def test_malformed_attributes_are_tolerated_and_the_span_is_still_stored(exporter, manager):
    weird = make_span(
        "chat weird",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": ["not", "a", "string"],
            "gen_ai.usage.input_tokens": "many",
            "gen_ai.usage.output_tokens": -5,
            "gen_ai.usage.cost": "free",
            "otel_diag.step.attempt": "second",
            "otel_diag.run.id": 12345,
            "otel_diag.error.category": None,
        },
        events=[exception_event("ValueError", None)],  # type: ignore[arg-type]
        status=StatusCode.ERROR,
    )
    assert exporter.export([weird]) is SpanExportResult.SUCCESS
    (step,) = rows(manager, steps)
    assert step["model"] == "not,a,string"
    assert step["input_tokens"] is None and step["output_tokens"] is None
    assert step["attempt"] == 1
    (error,) = rows(manager, error_logs)
    assert error["error_type"] == "ValueError"


def test_huge_and_non_utf8_messages_are_truncated_with_a_marker_and_stored(exporter, manager):
    huge = "x" * 1_000_000
    broken = "bad \udcff surrogate and NUL \x00 byte"
    exporter.export(
        [
            make_span(
                "execute_tool a",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "a"},
                events=[exception_event("RuntimeError", huge, huge)],
                status=StatusCode.ERROR,
            ),
            make_span(
                "execute_tool b",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "b\x00",
                    "note": b"\xff\xfe raw bytes",
                },
                events=[exception_event("RuntimeError", broken)],
                status=StatusCode.ERROR,
            ),
        ]
    )
    errors = {e["step_name"]: e for e in rows(manager, error_logs)}
    big = errors["a"]
    assert len(big["error_message"]) < 20_000
    assert "[truncated" in big["error_message"]
    assert "[truncated" in big["stack_trace"]
    small = next(e for name, e in errors.items() if name.startswith("b"))
    assert "\x00" not in small["error_message"]
    assert "surrogate" in small["error_message"]


def test_spans_naming_an_invalid_tenant_are_refused_and_the_rest_are_stored(
    exporter, manager, caplog
):
    good = agent_trace(failing=True)
    bad = make_span("x", attributes={"otel_diag.tenant.id": "../../etc/passwd"})
    with caplog.at_level(logging.WARNING, logger="otel_diag"):
        assert exporter.export([*good, bad]) is SpanExportResult.SUCCESS
    assert count(manager, steps) == 9
    assert exporter.last_result is not None and exporter.last_result.rejected == 1
    assert "invalid tenant id" in caplog.text


def test_a_database_that_goes_away_makes_export_fail_quietly_and_recover(make_pg_database, caplog):
    url = make_pg_database()
    exporter = ErrorLogSpanExporter(url)
    assert exporter.export(agent_trace(failing=True)) is SpanExportResult.SUCCESS
    manager = exporter.manager
    # Take the database away under the exporter: kill its connections and rename the
    # database, so every reconnect fails until it is renamed back.
    import psycopg

    admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_gone"')
    caplog.clear()
    results = []
    try:
        with caplog.at_level(logging.ERROR, logger="otel_diag"):
            for _ in range(3):
                results.append(exporter.export(agent_trace(failing=True)))
        assert results == [SpanExportResult.FAILURE] * 3
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (f"{name}_gone",),
            )
            conn.execute(f'ALTER DATABASE "{name}_gone" RENAME TO "{name}"')
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert exporter.export(agent_trace(failing=True)) is SpanExportResult.SUCCESS
    assert count(manager, runs) == 2
    exporter.shutdown()


def test_a_locked_sqlite_database_fails_the_export_within_the_timeout(tmp_path):
    import sqlite3

    from otel_diag.config import load_settings

    url = f"sqlite:///{tmp_path}/locked.db"
    exporter = ErrorLogSpanExporter(url, settings=load_settings(database_url=url, db_timeout=0.2))
    assert exporter.export(agent_trace(failing=True)) is SpanExportResult.SUCCESS
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        assert exporter.export(agent_trace(failing=True)) is SpanExportResult.FAILURE
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # OTEL_DIAG_DB_TIMEOUT's default is 5 s: the configured 0.2 s is what bounded the wait.
    assert waited < 2.0
    assert exporter.export(agent_trace(failing=True)) is SpanExportResult.SUCCESS
    exporter.shutdown()


def test_export_never_raises_into_the_calling_thread(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    exporter = ErrorLogSpanExporter(f"sqlite:///{tmp_path}/a-file/x.db")
    outcome: list[object] = []

    def sdk_thread() -> None:
        outcome.append(exporter.export(agent_trace(failing=True)))

    worker = threading.Thread(target=sdk_thread)
    worker.start()
    worker.join(timeout=30)
    assert outcome == [SpanExportResult.FAILURE]


def test_shutdown_makes_export_fail_and_force_flush_report_it(exporter):
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export(agent_trace()) is SpanExportResult.FAILURE
    assert exporter.force_flush() is False
    exporter.shutdown()  # idempotent


def test_the_exporter_is_constructible_with_no_arguments_from_the_environment(
    tmp_path, monkeypatch
):
    db = tmp_path / "env.db"
    monkeypatch.setenv("OTEL_DIAG_DATABASE_URL", f"sqlite:///{db}")
    exporter = ErrorLogSpanExporter()
    assert exporter.export(agent_trace(failing=True, rng=random.Random(1))) is (
        SpanExportResult.SUCCESS
    )
    assert db.exists()
    exporter.shutdown()


def test_the_exporter_is_registered_under_the_otel_diag_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [
        e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "otel_diag"
    ]
    assert ep.load() is ErrorLogSpanExporter


def test_the_exporters_own_database_work_is_not_traced(exporter, manager):
    """A database instrumentation that honours suppression (as the contrib ones do) records
    no span for export's SQL, though it records the app's own queries: no feedback loop."""
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from sqlalchemy import Engine, event, text

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("a-db-instrumentation")

    def traced(conn, cursor, statement, *args):
        if is_instrumentation_enabled():
            tracer.start_span(f"db {statement.split()[0]}").end()

    event.listen(Engine, "before_cursor_execute", traced)
    try:
        exporter.export(agent_trace(failing=True))
        exported = [s.name for s in memory.get_finished_spans()]
        with manager.get_engine(None).connect() as conn:  # the app's own query: traced
            conn.execute(text("SELECT 1"))
    finally:
        event.remove(Engine, "before_cursor_execute", traced)
        provider.shutdown()
    assert exported == []
    assert "db SELECT" in [s.name for s in memory.get_finished_spans()]  # (SQLite: also BEGIN)
    assert count(manager, runs) == 1  # export did write


def test_oversize_names_categories_and_numbers_fit_their_columns(manager):
    """PostgreSQL enforces VARCHAR(n) and INTEGER: one oversize field must not lose a batch."""
    from opentelemetry.sdk.resources import Resource

    long = "n" * 5000
    exporter = ErrorLogSpanExporter(manager=manager, settings=manager.settings)
    span = make_span(
        long,  # a root span: its name becomes the run name
        attributes={
            "otel_diag.step.name": long,
            "otel_diag.step.attempt": 3_000_000_000,
            "gen_ai.request.model": "m" * 500,
            "gen_ai.usage.input_tokens": 2**63,
        },
        events=[exception_event("E" * 1000, "boom", "", **{"otel_diag.error.category": "c" * 100})],
        status=StatusCode.ERROR,
        resource=Resource.create({"service.name": "s\x00" + "v" * 1000}),
    )
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    (run,) = rows(manager, runs)
    assert len(run["name"]) <= 256 and len(run["service_name"]) <= 256
    assert "\x00" not in run["service_name"]
    (step,) = rows(manager, steps)
    assert step["attempt"] == 1 and step["input_tokens"] is None
    assert len(step["step_name"]) <= 256
    (error,) = rows(manager, error_logs)
    assert len(error["error_type"]) <= 256 and len(error["error_category"]) <= 32


@pytest.mark.parametrize("order", ["in order", "retry first"])
def test_a_run_retried_in_a_new_trace_is_ok_once_the_latest_attempt_succeeds(
    exporter, manager, order
):
    import time as _time

    first = agent_trace(failing=True, run_key="order-7")
    _time.sleep(0.02)  # the retry starts and ends later
    retry = agent_trace(failing=False, run_key="order-7")
    batches = [first, retry] if order == "in order" else [retry, first]
    for batch in batches:
        exporter.export(batch)

    (run,) = rows(manager, runs)
    assert run["status"] == "ok"
    assert run["error_count"] == 1  # the first attempt's failure stays on record
    assert run["step_count"] == 18
