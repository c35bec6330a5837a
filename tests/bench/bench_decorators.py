"""Per-call overhead of ``@tool`` against a bare ``tracer.start_as_current_span``.

Same SDK set-up for both (a ``TracerProvider`` with a no-op span processor, so the figure is
the span machinery, not an exporter), same process, rounds interleaved, best round kept:

- ``@tool`` on a trivial function vs the same function inside a bare
  ``with tracer.start_as_current_span(name)`` (and, for reference, one that also sets the
  three attributes ``@tool`` sets). Target: decorator <= 1.3x the bare span.
- ``@tool(enable_telemetry=False)`` vs the undecorated function: nanoseconds added per call.
  Target: <= 1000 ns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from otel_diag import semconv as sc
from otel_diag.instrumentation import tool, tracing

CALLS = 20_000
ROUNDS = 7
RATIO_TARGET = 1.3
DISABLED_TARGET_NS = 1000.0


class NoOpProcessor(SpanProcessor):
    """Receives every span and does nothing: the SDK path without export cost."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        return None


def per_call_ns(fn: Callable[[], object], calls: int = CALLS) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - started) / calls


def best(candidates: dict[str, Callable[[], object]], rounds: int = ROUNDS) -> dict[str, float]:
    """Best per-call time of each candidate, rounds interleaved so drift hits all alike."""
    results = {name: float("inf") for name in candidates}
    for fn in candidates.values():  # warm-up
        per_call_ns(fn, 2_000)
    for _ in range(rounds):
        for name, fn in candidates.items():
            results[name] = min(results[name], per_call_ns(fn))
    return results


def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(NoOpProcessor())
    tracing.set_tracer_provider(provider)
    tracer = provider.get_tracer("bench")
    attributes = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
        sc.GEN_AI_TOOL_NAME: "lookup",
        sc.GEN_AI_TOOL_TYPE: "function",
    }

    def lookup() -> int:
        return 1

    def bare_span() -> int:
        with tracer.start_as_current_span("execute_tool lookup"):
            return lookup()

    def bare_span_with_attributes() -> int:
        with tracer.start_as_current_span("execute_tool lookup", attributes=attributes):
            return lookup()

    decorated = tool(lookup)
    disabled = tool(enable_telemetry=False)(lookup)

    try:
        spans = best(
            {
                "bare span": bare_span,
                "bare span + attributes": bare_span_with_attributes,
                "@tool": decorated,
            }
        )
        plain = best({"undecorated": lookup, "@tool(enable_telemetry=False)": disabled})
    finally:
        tracing.set_tracer_provider(None)
        provider.shutdown()

    for name, ns in {**spans, **plain}.items():
        print(f"{name:32s} {ns / 1000:8.3f} us/call")
    ratio = spans["@tool"] / spans["bare span"]
    ratio_attrs = spans["@tool"] / spans["bare span + attributes"]
    added = plain["@tool(enable_telemetry=False)"] - plain["undecorated"]
    print(
        f"@tool / bare span: {ratio:.2f}x (target <= {RATIO_TARGET}x: "
        f"{'met' if ratio <= RATIO_TARGET else 'MISSED'}); "
        f"vs bare span with the same attributes: {ratio_attrs:.2f}x"
    )
    print(
        f"enable_telemetry=False adds {added:+.0f} ns/call (target <= {DISABLED_TARGET_NS:.0f} ns: "
        f"{'met' if added <= DISABLED_TARGET_NS else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
