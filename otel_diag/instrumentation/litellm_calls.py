"""One litellm call as spans: request, response, usage, cost, errors and retry attempts.

:class:`LLMCall` is the lifecycle shared by completion and embedding, sync and async, plain
and streamed: ``begin`` (span ``{operation} {model}`` with the request attributes),
``succeed`` (response model, id, finish reasons, tokens, ``gen_ai.usage.cost``), ``fail``
(the error, classified from litellm's exception classes). Everything here runs inside the
user's call, so each step is guarded: a failure to describe the call never fails the call.

Retries. litellm's own ``num_retries`` handling catches the failed first attempt and calls
``litellm.completion_with_retries`` from its ``except`` block; the instrumentor hooks that
function. The first attempt's span is ended there with the error (``sys.exc_info()``), and
each retry gets its own sibling span with the next ``otel_diag.step.attempt``. A call the
user repeats after a failure under the same parent span counts on from the last attempt.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer, set_span_in_context

from otel_diag import semconv as sc
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.attempts import current_span_id, tracker
from otel_diag.instrumentation.content import CONTENT_CHARS, render
from otel_diag.instrumentation.errors import record_error
from otel_diag.instrumentation.litellm_stream import wrap_stream
from otel_diag.redact import safe_text

ACTIVE: ContextVar[LLMCall | None] = ContextVar("otel_diag_llm_call", default=None)
"""The call in progress in this context: nested litellm calls join it, retries find it."""

_REQUEST_PARAMS = {
    "max_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "temperature": sc.GEN_AI_REQUEST_TEMPERATURE,
}


def provider_name(litellm_provider: str | None) -> str | None:
    if not litellm_provider:
        return None
    name = str(getattr(litellm_provider, "value", litellm_provider))
    return sc.LITELLM_PROVIDERS.get(name, name)


def split_model(model: str, custom_provider: Any = None) -> tuple[str | None, str]:
    """(litellm provider, model name) without calling litellm (which prints on unknowns)."""
    litellm = sys.modules.get("litellm")
    if "/" in model:
        prefix, rest = model.split("/", 1)
        known = getattr(litellm, "provider_list", ()) if litellm is not None else ()
        if prefix in known or not known:
            return str(custom_provider or prefix), rest
    if custom_provider:
        return str(custom_provider), model
    if litellm is not None:
        entry = getattr(litellm, "model_cost", {}).get(model)
        if isinstance(entry, Mapping) and entry.get("litellm_provider"):
            return str(entry["litellm_provider"]), model
    return None, model


def _hidden(obj: Any) -> Mapping[str, Any]:
    hidden = getattr(obj, "_hidden_params", None)
    return hidden if isinstance(hidden, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and value >= 0 else None


class LLMCall:
    """The spans of one user-level litellm call (one per attempt)."""

    __slots__ = (
        "attempt",
        "capture",
        "content",
        "kwargs",
        "litellm_model",
        "operation",
        "parent_ctx",
        "parent_id",
        "provider",
        "request_model",
        "span",
        "tracer",
    )

    def __init__(
        self, tracer: Tracer, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ):
        self.tracer = tracer
        self.operation = operation
        self.kwargs = kwargs
        model = kwargs.get("model", args[0] if args else None)
        self.litellm_model = str(model) if model is not None else "unknown"
        provider, self.request_model = split_model(
            self.litellm_model, kwargs.get("custom_llm_provider")
        )
        self.provider = provider_name(provider)
        self.parent_ctx = otel_context.get_current()
        self.parent_id = current_span_id()
        self.capture = tracing.capture_content()
        self.attempt = tracker.next_attempt(self.parent_id, self.key) - 1
        self.span: Span | None = None
        if operation == sc.OP_CHAT:
            self.content = kwargs.get("messages", args[1] if len(args) > 1 else None)
        else:
            self.content = kwargs.get("input", args[1] if len(args) > 1 else None)
        self.start_attempt()

    @property
    def key(self) -> str:
        return f"llm:{self.operation}:{self.litellm_model}"

    def start_attempt(self) -> Span:
        """A span for the next attempt, a child of the caller's span; it becomes ``span``."""
        self.attempt += 1
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: self.operation,
            sc.GEN_AI_REQUEST_MODEL: self.request_model,
        }
        if self.provider:
            attributes[sc.GEN_AI_PROVIDER_NAME] = self.provider
        if self.attempt > 1:
            attributes[sc.STEP_ATTEMPT] = self.attempt
        for param, attr in _REQUEST_PARAMS.items():
            value = self.kwargs.get(param)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attr] = value
        if self.capture and self.content is not None:
            key = sc.GEN_AI_INPUT_MESSAGES if self.operation == sc.OP_CHAT else sc.INPUT_VALUE
            attributes[key] = render(self.content)
        span = self.tracer.start_span(
            f"{self.operation} {self.request_model}",
            context=self.parent_ctx,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        self.span = span
        return span

    def context(self) -> Context:
        assert self.span is not None
        return set_span_in_context(self.span, self.parent_ctx)

    # --- endings -----------------------------------------------------------------------
    def fail(self, exc: BaseException | None, category: str | None = None) -> None:
        """End the current attempt with ``exc`` (no-op if a retry already ended it)."""
        span, self.span = self.span, None
        if span is not None:
            self.fail_span(span, exc, category)

    def fail_span(self, span: Span, exc: BaseException | None, category: str | None = None) -> None:
        """Record ``exc`` on ``span`` (an attempt of this call) and end it."""
        try:
            if isinstance(exc, Exception):
                provider = getattr(exc, "llm_provider", None)
                if provider and not self.provider:
                    span.set_attribute(sc.GEN_AI_PROVIDER_NAME, provider_name(provider) or "")
                status = getattr(exc, "status_code", None)
                if isinstance(status, int) and not isinstance(status, bool):
                    span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
                record_error(span, exc, step_kind="llm", category=category)
            elif exc is None:
                record_error(
                    span, "attempt failed; litellm retried", step_kind="llm", category=category
                )
            else:  # cancelled or interrupted: the span ends, nothing failed
                return
            tracker.failed(self.parent_id, self.key, self.attempt)
        except Exception:
            tracing.internal_error("recording an LLM error")
        finally:
            span.end()

    def succeed(self, result: Any) -> Any:
        """Finish the attempt with ``result``; a stream is returned wrapped, ending later."""
        span = self.span
        if span is None:  # a retry attempt already finished this call
            return result
        if self.kwargs.get("stream") and not hasattr(result, "choices"):
            self.span = None
            try:
                return wrap_stream(result, self, span)
            except Exception:
                tracing.internal_error("wrapping an LLM stream")
                span.end()
                return result
        self.span = None
        try:
            self.describe_response(span, result)
            tracker.succeeded(self.parent_id, self.key)
        except Exception:
            tracing.internal_error("recording an LLM response")
        finally:
            span.end()
        return result

    def describe_response(self, span: Span, result: Any) -> None:
        attributes: dict[str, Any] = {}
        model = getattr(result, "model", None)
        if model:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = str(model)
        response_id = getattr(result, "id", None)
        if isinstance(response_id, str) and response_id:
            attributes[sc.GEN_AI_RESPONSE_ID] = response_id
        choices = getattr(result, "choices", None) or ()
        reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
        if reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        hidden = _hidden(result)
        if not self.provider and hidden.get("custom_llm_provider"):
            attributes[sc.GEN_AI_PROVIDER_NAME] = provider_name(hidden["custom_llm_provider"])
        usage = getattr(result, "usage", None)
        input_tokens = getattr(usage, "prompt_tokens", None)
        output_tokens = getattr(usage, "completion_tokens", None)
        if isinstance(input_tokens, int):
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if isinstance(output_tokens, int) and self.operation != sc.OP_EMBEDDINGS:
            attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        cost = _number(hidden.get("response_cost"))
        if cost is None and usage is not None:
            cost = self._litellm_cost(lambda lm: lm.completion_cost(completion_response=result))
        if cost is not None:
            attributes[sc.GEN_AI_USAGE_COST] = cost
        if self.capture and choices:
            attributes[sc.GEN_AI_OUTPUT_MESSAGES] = render(
                [_message_of(c) for c in choices], CONTENT_CHARS
            )
        span.set_attributes(attributes)

    def stream_cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        return self._litellm_cost(
            lambda lm: sum(
                lm.cost_per_token(
                    model=self.litellm_model if "/" in self.litellm_model else (model or ""),
                    prompt_tokens=input_tokens,
                    completion_tokens=output_tokens,
                )
            )
        )

    def _litellm_cost(self, compute: Callable[[Any], Any]) -> float | None:
        """litellm's own price calculation; an unpriced model is no cost, never an error."""
        litellm = sys.modules.get("litellm")
        if litellm is None:
            return None
        try:
            return _number(compute(litellm))
        except Exception:
            return None


def _message_of(choice: Any) -> dict[str, Any]:
    message = getattr(choice, "message", None)
    out: dict[str, Any] = {"role": getattr(message, "role", None) or "assistant"}
    content = getattr(message, "content", None)
    if content is not None:
        out["content"] = content
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = [
            {
                "id": getattr(t, "id", None),
                "name": getattr(getattr(t, "function", None), "name", None),
                "arguments": safe_text(
                    getattr(getattr(t, "function", None), "arguments", ""), 1024
                ),
            }
            for t in tool_calls
        ]
    finish = getattr(choice, "finish_reason", None)
    if finish:
        out["finish_reason"] = finish
    return out
