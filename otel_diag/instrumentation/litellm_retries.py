"""Retries inside one litellm call, as sibling spans with ``otel_diag.step.attempt`` 1, 2, ...

litellm retries at two levels, and both happen inside the user's single call:

* ``num_retries`` for OpenAI-compatible providers becomes the OpenAI SDK's ``max_retries``;
  the SDK loops over HTTP attempts and calls ``_sleep_for_retry`` between them, from the
  ``except`` block that caught the failed attempt. Hooking it ends the current attempt's
  span with that error (``sys.exc_info()``) and, after the back-off, starts the next one.
* litellm's own wrapper calls ``litellm.completion_with_retries`` from *its* ``except``
  block; hooking that wraps each retried call in an attempt span. The failed first attempt
  is ended only when a retry really starts, so if litellm gives up at once, the error the
  user sees is the one on the span.

Hooks act only while an :class:`LLMCall` is active in the context; anything else passes
straight through. Tracing failures never stop a retry.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from opentelemetry import context as otel_context

from otel_diag import semconv as sc
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.litellm_calls import ACTIVE, LLMCall

# HTTP status of a retried attempt -> category (the SDK's error is a generic httpx one).
_STATUS_CATEGORIES = {408: "timeout", 409: "dependency", 429: "rate_limit"}


def _status_category(response: Any) -> tuple[int | None, str | None]:
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None, None
    if status in _STATUS_CATEGORIES:
        return status, _STATUS_CATEGORIES[status]
    return status, "dependency" if status >= 500 else None


def _end_failed_attempt(call: LLMCall, response: Any) -> None:
    span = call.span
    if span is None:
        return
    status, category = _status_category(response)
    if status is not None:
        span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
    call.fail(sys.exc_info()[1], category)


def _next_attempt(call: LLMCall) -> None:
    call.start_attempt()
    # Left attached: the outer call's detach restores the caller's context in one step.
    otel_context.attach(call.context())


def wrap_sdk_sleep(original: Any, is_async: bool) -> Any:
    """Wrap ``openai.{Sync,Async}APIClient._sleep_for_retry``."""
    if is_async:

        @functools.wraps(original)
        async def async_sleep(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = ACTIVE.get()
            if call is None or call.span is None:
                return await original(self, *args, **kwargs)
            try:
                _end_failed_attempt(call, kwargs.get("response"))
            except Exception:
                tracing.internal_error("ending a retried LLM attempt")
            result = await original(self, *args, **kwargs)
            try:
                _next_attempt(call)
            except Exception:
                tracing.internal_error("starting an LLM retry span")
            return result

        return async_sleep

    @functools.wraps(original)
    def sleep(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = ACTIVE.get()
        if call is None or call.span is None:
            return original(self, *args, **kwargs)
        try:
            _end_failed_attempt(call, kwargs.get("response"))
        except Exception:
            tracing.internal_error("ending a retried LLM attempt")
        result = original(self, *args, **kwargs)
        try:
            _next_attempt(call)
        except Exception:
            tracing.internal_error("starting an LLM retry span")
        return result

    return sleep


def wrap_with_retries(original: Any, is_async: bool, call_name: str) -> Any:
    """Wrap ``litellm.completion_with_retries`` / ``acompletion_with_retries``."""

    def prepare(kwargs: dict[str, Any]) -> None:
        call = ACTIVE.get()
        if call is None or call.span is None:
            return
        try:
            trigger = sys.exc_info()[1]  # called from litellm's except block
            main = sys.modules.get("litellm.main")
            inner = kwargs.get("original_function") or getattr(main, call_name, None)
            if inner is not None:
                kwargs["original_function"] = _attempt(call, inner, trigger, is_async)
        except Exception:
            tracing.internal_error("tracing litellm retries")

    if is_async:

        @functools.wraps(original)
        async def async_hook(*args: Any, **kwargs: Any) -> Any:
            prepare(kwargs)
            return await original(*args, **kwargs)

        return async_hook

    @functools.wraps(original)
    def hook(*args: Any, **kwargs: Any) -> Any:
        prepare(kwargs)
        return original(*args, **kwargs)

    return hook


def _attempt(call: LLMCall, inner: Any, trigger: BaseException | None, is_async: bool) -> Any:
    """``inner`` (one retried call) traced as the call's next attempt."""

    def begin() -> object | None:
        try:
            if call.span is not None:
                call.fail(trigger)
            call.start_attempt()
            return otel_context.attach(call.context())
        except Exception:
            tracing.internal_error("starting an LLM retry span")
            return None

    def failed(token: object | None, exc: BaseException) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
            call.fail(exc)

    def done(token: object | None, result: Any) -> Any:
        if token is None:
            return result
        otel_context.detach(token)  # type: ignore[arg-type]
        return call.succeed(result)

    if is_async:

        @functools.wraps(inner)
        async def async_attempt(*args: Any, **kwargs: Any) -> Any:
            token = begin()
            try:
                result = await inner(*args, **kwargs)
            except BaseException as exc:
                failed(token, exc)
                raise
            return done(token, result)

        return async_attempt

    @functools.wraps(inner)
    def attempt(*args: Any, **kwargs: Any) -> Any:
        token = begin()
        try:
            result = inner(*args, **kwargs)
        except BaseException as exc:
            failed(token, exc)
            raise
        return done(token, result)

    return attempt
