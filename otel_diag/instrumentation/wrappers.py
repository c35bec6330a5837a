"""The span lifecycle around a decorated call, for each function shape.

``_start`` (span + attach), ``_finish`` / ``_fail`` (detach, record, end) are shared by the
four wrappers: plain functions, coroutines, generators and async generators. Generators are
driven by hand (send / throw / close forwarded) so their span is current only while their
own code runs, never while the consumer's code between two items does. Everything about a
decorated function that does not change between calls is computed once into a :class:`Spec`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, set_span_in_context

from otel_diag import semconv as sc
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.attempts import current_span_id, tracker
from otel_diag.instrumentation.content import ArgumentRenderer, parameter_index, render
from otel_diag.instrumentation.errors import record_error

P = ParamSpec("P")
R = TypeVar("R")

_attach = otel_context.attach
_detach = otel_context.detach
_INTERNAL = SpanKind.INTERNAL
_holder = tracing._holder
_capture_content = tracing.capture_content
_failures = tracker.failures


class Spec:
    """Everything about one decorated function that does not change between calls."""

    __slots__ = (
        "args_attr",
        "attributes",
        "call_id_index",
        "call_id_name",
        "key",
        "render_args",
        "result_attr",
        "span_name",
        "step_kind",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        step_kind: str,
        span_name: str,
        attributes: dict[str, Any],
        args_attr: str,
        result_attr: str,
        call_id_name: str | None,
    ) -> None:
        self.step_kind = step_kind
        self.span_name = span_name
        self.attributes = attributes
        self.key = f"{step_kind}:{span_name}"
        self.args_attr = args_attr
        self.result_attr = result_attr
        self.render_args = ArgumentRenderer(func)
        self.call_id_name = call_id_name
        self.call_id_index = parameter_index(func, call_id_name) if call_id_name else None


def _parent_id(span: Span) -> int:
    parent = getattr(span, "parent", None)
    return parent.span_id if parent is not None else 0


def _start(spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Span, object, bool]:
    """Start and attach the span; returns it, the context token, and whether to capture."""
    attributes = spec.attributes
    if _failures:
        attempt = tracker.next_attempt(current_span_id(), spec.key)
        if attempt > 1:
            attributes = {**attributes, sc.STEP_ATTEMPT: attempt}
    if spec.call_id_index is not None:
        call_id = kwargs.get(spec.call_id_name)  # type: ignore[arg-type]
        if call_id is None and 0 <= spec.call_id_index < len(args):
            call_id = args[spec.call_id_index]
        if call_id is not None:
            attributes = {**attributes, sc.GEN_AI_TOOL_CALL_ID: str(call_id)}
    span = _holder.tracer.start_span(spec.span_name, kind=_INTERNAL, attributes=attributes)
    token = _attach(set_span_in_context(span))
    capture = _capture_content()
    if capture:
        try:
            span.set_attribute(spec.args_attr, spec.render_args(args, kwargs))
        except Exception:
            tracing.internal_error("recording arguments")
    return span, token, capture


def _finish(spec: Spec, span: Span, token: object, result: Any, capture: bool) -> None:
    _detach(token)  # type: ignore[arg-type]
    try:
        if capture:
            span.set_attribute(spec.result_attr, render(result))
        if _failures:
            tracker.succeeded(_parent_id(span), spec.key)
    except Exception:
        tracing.internal_error("recording a result")
    finally:
        span.end()


def _fail(spec: Spec, span: Span, token: object, exc: BaseException) -> None:
    _detach(token)  # type: ignore[arg-type]
    try:
        # Cancellation, KeyboardInterrupt, SystemExit, GeneratorExit end the span normally.
        if isinstance(exc, Exception):
            record_error(span, exc, step_kind=spec.step_kind)
            attrs = getattr(span, "attributes", None) or {}
            tracker.failed(_parent_id(span), spec.key, int(attrs.get(sc.STEP_ATTEMPT, 1)))
    except Exception:
        tracing.internal_error("recording an error")
    finally:
        span.end()


def _wrap_function(func: Callable[P, R], spec: Spec) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            span, token, capture = _start(spec, args, kwargs)
        except Exception:
            tracing.internal_error("starting a span")
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _fail(spec, span, token, exc)
            raise
        _finish(spec, span, token, result, capture)
        return result

    return wrapper


def _wrap_coroutine(func: Callable[P, Any], spec: Spec) -> Callable[P, Any]:
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            span, token, capture = _start(spec, args, kwargs)
        except Exception:
            tracing.internal_error("starting a span")
            return await func(*args, **kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _fail(spec, span, token, exc)
            raise
        _finish(spec, span, token, result, capture)
        return result

    return wrapper


def _wrap_generator(func: Callable[P, Generator[Any, Any, Any]], spec: Spec) -> Callable[P, Any]:
    """The span covers the whole iteration and is current only while the generator runs."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
        try:
            span, token, _ = _start(spec, args, kwargs)
        except Exception:
            tracing.internal_error("starting a span")
            return (yield from func(*args, **kwargs))
        ctx = otel_context.get_current()
        _detach(token)  # type: ignore[arg-type]
        gen: Generator[Any, Any, Any] | None = None
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = _attach(ctx)
            try:
                if gen is None:
                    gen = func(*args, **kwargs)
                if to_throw is not None:
                    item, to_throw = gen.throw(to_throw), None
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                _finish(spec, span, token, None, False)
                return stop.value
            except BaseException as exc:
                _fail(spec, span, token, exc)
                raise
            _detach(token)  # type: ignore[arg-type]
            try:
                to_send = yield item
            except GeneratorExit:
                token = _attach(ctx)
                try:
                    gen.close()
                except BaseException as exc:
                    _fail(spec, span, token, exc)
                    raise
                _finish(spec, span, token, None, False)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def _wrap_async_generator(
    func: Callable[P, AsyncGenerator[Any, Any]], spec: Spec
) -> Callable[P, AsyncGenerator[Any, Any]]:
    """As :func:`_wrap_generator`, for ``async def ... yield``."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
        try:
            span, token, _ = _start(spec, args, kwargs)
        except Exception:
            tracing.internal_error("starting a span")
            async for item in func(*args, **kwargs):
                yield item
            return
        ctx = otel_context.get_current()
        _detach(token)  # type: ignore[arg-type]
        agen: AsyncGenerator[Any, Any] | None = None
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = _attach(ctx)
            try:
                if agen is None:
                    agen = func(*args, **kwargs)
                if to_throw is not None:
                    item, to_throw = await agen.athrow(to_throw), None
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                _finish(spec, span, token, None, False)
                return
            except BaseException as exc:
                _fail(spec, span, token, exc)
                raise
            _detach(token)  # type: ignore[arg-type]
            try:
                to_send = yield item
            except GeneratorExit:
                token = _attach(ctx)
                try:
                    await agen.aclose()
                except BaseException as exc:
                    _fail(spec, span, token, exc)
                    raise
                _finish(spec, span, token, None, False)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def decorate_with(func: Any, spec_for: Callable[[Callable[..., Any]], Spec]) -> Any:
    if isinstance(func, staticmethod | classmethod):
        return type(func)(decorate_with(func.__func__, spec_for))
    spec = spec_for(func)
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, spec)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, spec)
    if inspect.iscoroutinefunction(func):
        return _wrap_coroutine(func, spec)
    return _wrap_function(func, spec)
