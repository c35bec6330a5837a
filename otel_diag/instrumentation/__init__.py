"""Instrumentation: what application code uses to emit the spans otel-diag maps.

``@agent`` / ``@tool`` (decorators), ``run()`` / ``step()`` (context managers), the
``log_*`` / ``collect_error`` emit API, :class:`RunBaggageSpanProcessor`, and
``set_tracer_provider``. The litellm instrumentor lives in
:mod:`otel_diag.instrumentation.litellm_instrumentor`; importing it does not import litellm.
"""

from otel_diag.instrumentation.classification import classify_exception
from otel_diag.instrumentation.decorators import agent, tool
from otel_diag.instrumentation.errors import (
    ErrorInfo,
    LogSource,
    collect_error,
    log_error,
    log_exception,
    log_llm_error,
    log_tool_error,
)
from otel_diag.instrumentation.run_context import (
    RunBaggageSpanProcessor,
    RunContext,
    StepContext,
    run,
    step,
)
from otel_diag.instrumentation.tracing import set_capture_content, set_tracer_provider

__all__ = [
    "ErrorInfo",
    "LogSource",
    "RunBaggageSpanProcessor",
    "RunContext",
    "StepContext",
    "agent",
    "classify_exception",
    "collect_error",
    "log_error",
    "log_exception",
    "log_llm_error",
    "log_tool_error",
    "run",
    "set_capture_content",
    "set_tracer_provider",
    "step",
    "tool",
]
