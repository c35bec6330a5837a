"""A small trip-planning agent that fails, instrumented with the plain OpenTelemetry API.

It imports nothing from otel-diag: run it under
``opentelemetry-instrument --traces_exporter otel_diag python -m otel_diag.examples.failing_agent``
and the exporter turns its failed spans into error rows with model, tokens and cost.
The LLM call is simulated (no network): the span carries what a real GenAI
instrumentation would record.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

from opentelemetry import trace

tracer = trace.get_tracer("demo.trip_planner")


def plan(question: str) -> str:
    """One 'LLM call': a chat span with GenAI usage attributes."""
    with tracer.start_as_current_span(
        "chat gpt-4o-mini",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 64,
        },
    ):
        time.sleep(0.01)
        return f"search flights for: {question}"


def search_flights(query: str, attempt: int) -> list[str]:
    """A tool whose upstream is down; the URL carries a password that must not be stored."""
    with tracer.start_as_current_span(
        "execute_tool search_flights",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "search_flights",
            "gen_ai.tool.type": "function",
            "otel_diag.step.attempt": attempt,
        },
    ):
        time.sleep(0.005)
        raise ConnectionError(
            "flight search API unreachable: connect to "
            "https://agent:hunter2-secret@flights.internal/v2/search timed out after 3 retries"
        )


def run_workflow(run_id: str) -> None:
    with (
        tracer.start_as_current_span(
            "invoke_workflow trip-planner",
            attributes={"otel_diag.run.id": run_id, "gen_ai.operation.name": "invoke_workflow"},
        ),
        tracer.start_as_current_span(
            "invoke_agent planner",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
        ),
    ):
        query = plan("Lisbon to Tokyo, next Friday")
        for attempt in (1, 2, 3):
            try:
                search_flights(query, attempt)
                return
            except ConnectionError:
                if attempt == 3:
                    raise


def main() -> int:
    run_id = os.environ.get("DEMO_RUN_ID", str(uuid.uuid4()))
    try:
        run_workflow(run_id)
    except ConnectionError as exc:
        print(f"run {run_id} failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
