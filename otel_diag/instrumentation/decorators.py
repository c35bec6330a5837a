"""``@agent`` and ``@tool``: one decorator factory for every function shape.

The factory reads the function once, at decoration time (its shape, its span name, its
attribute dict, where a tool call id sits in its signature), so a call does only what must
happen per call: start the span, attach it, call, record, end. Sync and async functions,
generators and async generators, methods, static and class methods keep their signatures
(``ParamSpec``) and their behaviour: results pass through untouched and the caller's own
exception is re-raised unchanged (same object, same traceback). With
``enable_telemetry=False`` the function is returned as it is, so the switch costs nothing.

Spans follow the GenAI semantic conventions: ``invoke_agent {name}`` and
``execute_tool {name}``. Arguments and results are recorded only when content capture is on.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, ParamSpec, TypeVar, cast, overload

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


class _Spec:
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


def _start(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Span, object, bool]:
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


def _finish(spec: _Spec, span: Span, token: object, result: Any, capture: bool) -> None:
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


def _fail(spec: _Spec, span: Span, token: object, exc: BaseException) -> None:
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


def _wrap_function(func: Callable[P, R], spec: _Spec) -> Callable[P, R]:
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


def _wrap_coroutine(func: Callable[P, Any], spec: _Spec) -> Callable[P, Any]:
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


def _wrap_generator(func: Callable[P, Generator[Any, Any, Any]], spec: _Spec) -> Callable[P, Any]:
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
    func: Callable[P, AsyncGenerator[Any, Any]], spec: _Spec
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


def _decorate(func: Any, spec_for: Callable[[Callable[..., Any]], _Spec]) -> Any:
    if isinstance(func, staticmethod | classmethod):
        return type(func)(_decorate(func.__func__, spec_for))
    spec = spec_for(func)
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, spec)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, spec)
    if inspect.iscoroutinefunction(func):
        return _wrap_coroutine(func, spec)
    return _wrap_function(func, spec)


def _agent_spec(name: str | None) -> Callable[[Callable[..., Any]], _Spec]:
    def make(func: Callable[..., Any]) -> _Spec:
        agent_name = name or getattr(func, "__name__", "agent")
        return _Spec(
            func,
            "agent",
            f"{sc.OP_INVOKE_AGENT} {agent_name}",
            {sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: agent_name},
            sc.INPUT_VALUE,
            sc.OUTPUT_VALUE,
            None,
        )

    return make


def _tool_spec(
    name: str | None, tool_type: str, call_id_param: str | None
) -> Callable[[Callable[..., Any]], _Spec]:
    def make(func: Callable[..., Any]) -> _Spec:
        tool_name = name or getattr(func, "__name__", "tool")
        return _Spec(
            func,
            "tool",
            f"{sc.OP_EXECUTE_TOOL} {tool_name}",
            {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: tool_name,
                sc.GEN_AI_TOOL_TYPE: tool_type,
            },
            sc.GEN_AI_TOOL_CALL_ARGUMENTS,
            sc.GEN_AI_TOOL_CALL_RESULT,
            call_id_param,
        )

    return make


@overload
def agent(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def agent(
    func: None = None, /, *, name: str | None = None, enable_telemetry: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def agent(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    enable_telemetry: bool = True,
) -> Any:
    """Trace a function as an agent invocation: an ``invoke_agent {name}`` span per call.

    Use bare (``@agent``) or with options (``@agent(name="planner")``). ``name`` defaults to
    the function's name; ``enable_telemetry=False`` leaves the function untouched.
    """

    def decorate(f: Callable[P, R]) -> Callable[P, R]:
        if not enable_telemetry:
            return f
        return cast(Callable[P, R], _decorate(f, _agent_spec(name)))

    return decorate(func) if func is not None else decorate


@overload
def tool(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def tool(
    func: None = None,
    /,
    *,
    name: str | None = None,
    tool_type: str = "function",
    call_id_param: str | None = "tool_call_id",
    enable_telemetry: bool = True,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def tool(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    tool_type: str = "function",
    call_id_param: str | None = "tool_call_id",
    enable_telemetry: bool = True,
) -> Any:
    """Trace a function as a tool: an ``execute_tool {name}`` span per call.

    ``tool_type`` is ``gen_ai.tool.type`` (``function``, ``extension``, ``datastore``). If the
    function has a parameter named ``call_id_param`` (default ``tool_call_id``), its value is
    recorded as ``gen_ai.tool.call.id``. A call that follows a failed call of the same tool
    in the same parent step is recorded as the next attempt (``otel_diag.step.attempt``).
    """

    def decorate(f: Callable[P, R]) -> Callable[P, R]:
        if not enable_telemetry:
            return f
        return cast(Callable[P, R], _decorate(f, _tool_spec(name, tool_type, call_id_param)))

    return decorate(func) if func is not None else decorate
