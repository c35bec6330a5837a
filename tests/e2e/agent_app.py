"""The app of the end-to-end tests: otel-diag's decorators on the real OpenTelemetry SDK.

Each run is one trace, sent over OTLP/gRPC (to the gateway collector in the tests)::

    invoke_workflow trip-planner            run("trip-planner", run_id=<uuid>)
      invoke_agent planner                  @agent
        execute_tool lookup_weather         @tool
        quote                               step("quote")
        execute_tool search_flights         @tool; raises ConnectionError in a failing run

The root span is the run itself (a ``runs`` row); every span below it is an otel-diag
step (agent, tool, activity), so the steps otel-diag stores for a trace equal the non-root
spans sent. In a failing run the tool's exception propagates to
the root: the run fails. A span processor tallies every span the SDK ended, and the app
prints what it sent as JSON on stdout: ``{"runs": [{"run_id", "trace_id", "failed",
"at", "spans", "steps"}], "spans": N}`` (``at``: the run's start, Unix time; ``steps``: the
spans below the root).

    python -m tests.e2e.agent_app --endpoint 127.0.0.1:4317 --runs 10 --fail-every 3
    python -m tests.e2e.agent_app --endpoint ... --duration 30 --interval 0.1
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

import otel_diag
from otel_diag import agent, step, tool


class Tally(SpanProcessor):
    """Counts the spans the SDK ended per trace (what was handed to the exporter), and roots."""

    def __init__(self) -> None:
        self.spans: Counter[str] = Counter()
        self.roots: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None:
            trace_id = format(span.context.trace_id, "032x")
            with self._lock:
                self.spans[trace_id] += 1
                self.roots[trace_id] += span.parent is None


@tool
def lookup_weather(city: str) -> str:
    return f"sunny in {city}"


@tool
def search_flights(query: str, fail: bool) -> list[str]:
    if fail:
        raise ConnectionError(f"flight search API unreachable for {query!r}: upstream timed out")
    return ["TP123"]


@agent(name="planner")
def plan(question: str, fail: bool) -> list[str]:
    lookup_weather("Tokyo")
    with step("quote"):
        pass
    return search_flights(question, fail)


def one_run(index: int, fail: bool) -> dict[str, object]:
    at = time.time()
    current = otel_diag.run("trip-planner", run_id=str(uuid.uuid4()))
    try:
        with current:
            plan(f"Lisbon to Tokyo #{index}", fail)
    except ConnectionError:
        pass  # recorded on the tool, agent and run spans, re-raised unchanged; carry on
    return {"run_id": current.run_id, "trace_id": current.trace_id, "failed": fail, "at": at}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="OTLP/gRPC host:port")
    parser.add_argument("--runs", type=int, default=0, help="number of runs (or --duration)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds of traffic")
    parser.add_argument("--interval", type=float, default=0.0, help="pause between runs")
    parser.add_argument("--fail-every", type=int, default=3, help="run i fails if i %% N == 0")
    args = parser.parse_args(argv)

    provider = otel_diag.configure(
        service_name="trip-planner",
        store=False,
        otlp=True,
        otlp_endpoint=f"http://{args.endpoint}",
        otlp_protocol="grpc",
        instrument_litellm=False,
    )
    tally = Tally()
    provider.add_span_processor(tally)

    runs = []
    deadline = time.monotonic() + args.duration
    index = 0
    while (args.runs and index < args.runs) or (args.duration and time.monotonic() < deadline):
        runs.append(one_run(index, index % args.fail_every == 0))
        index += 1
        if args.interval:
            time.sleep(args.interval)
    provider.force_flush(30_000)
    provider.shutdown()
    for run in runs:
        trace_id = str(run["trace_id"])
        run["spans"] = tally.spans[trace_id]
        run["steps"] = tally.spans[trace_id] - tally.roots[trace_id]
    json.dump({"runs": runs, "spans": sum(tally.spans.values())}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
