"""ErrorCollector read side: errors of a run and the compact diagnostic context."""

from __future__ import annotations

from otel_diag.diagnosis.context import compact_stack
from otel_diag.error_collector import ErrorCollector
from tests.factories import agent_trace


def test_errors_for_a_run_are_returned_oldest_first_by_any_run_reference(exporter, manager):
    spans = agent_trace(failing=True, run_key="ctx-run")
    exporter.export(spans)
    collector = ErrorCollector(manager=manager)
    trace_id = f"{spans[0].context.trace_id:032x}"

    by_key = collector.get_errors_for_run("ctx-run")
    by_trace = collector.get_errors_for_run(trace_id)
    run_id = str(by_key[0].run_id)
    by_prefix = collector.get_errors_for_run(run_id[:8])

    assert len(by_key) == 1  # one failure; the agent and workflow spans only re-recorded it
    assert by_key == by_trace == by_prefix
    assert [e.created_at for e in by_key] == sorted(e.created_at for e in by_key)
    assert collector.get_errors_for_run("no-such-run") == []


def test_the_diagnostic_context_is_compact_ordered_and_deduplicated(exporter, manager):
    exporter.export(agent_trace(failing=True, run_key="ctx-run", stack_size=20_000))
    ctx = ErrorCollector(manager=manager).build_diagnostic_context("ctx-run")

    assert ctx is not None
    assert ctx["run"]["status"] == "failed"
    assert ctx["run"]["llm_calls"] == 4 and ctx["run"]["tool_calls"] == 4
    assert [s["start_ms"] for s in ctx["steps"]] == sorted(s["start_ms"] for s in ctx["steps"])
    assert [s["kind"] for s in ctx["steps"]][:3] == ["agent", "llm", "tool"]
    assert ctx["steps"][1]["model"] == "gpt-4o-mini"
    # One error shape, recorded on three spans as it propagated: listed once.
    (error,) = ctx["errors"]
    assert error["type"] == "ConnectionError"
    assert error["step"] == "search"
    assert sorted(error["seen_on"]) == ["invoke_workflow trip", "planner"]
    assert len(error["stack"]) <= 2000
    assert ErrorCollector(manager=manager).build_diagnostic_context("unknown") is None


def test_compact_stack_keeps_application_frames_and_the_exception_line():
    stack = (
        "Traceback (most recent call last):\n"
        '  File "/app/agent.py", line 10, in run\n    step()\n'
        '  File "/venv/lib/python3.11/site-packages/httpx/_client.py", line 99, in send\n    x\n'
        '  File "/app/tools.py", line 42, in search\n    raise ConnectionError("down")\n'
        "ConnectionError: down\n"
    )
    assert (
        compact_stack(stack) == "agent.py:10 in run\ntools.py:42 in search\nConnectionError: down"
    )


def test_run_ids_with_capital_letters_are_found_by_their_exact_text(exporter, manager):
    exporter.export(agent_trace(failing=True, run_key="Order-ABC-42"))
    collector = ErrorCollector(manager=manager)
    assert len(collector.get_errors_for_run("Order-ABC-42")) == 1
