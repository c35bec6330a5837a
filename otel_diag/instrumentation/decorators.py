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

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from otel_diag import semconv as sc
from otel_diag.instrumentation.wrappers import Spec, decorate_with

P = ParamSpec("P")
R = TypeVar("R")


def _agent_spec(name: str | None) -> Callable[[Callable[..., Any]], Spec]:
    def make(func: Callable[..., Any]) -> Spec:
        agent_name = name or getattr(func, "__name__", "agent")
        return Spec(
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
) -> Callable[[Callable[..., Any]], Spec]:
    def make(func: Callable[..., Any]) -> Spec:
        tool_name = name or getattr(func, "__name__", "tool")
        return Spec(
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
        return cast(Callable[P, R], decorate_with(f, _agent_spec(name)))

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
        return cast(Callable[P, R], decorate_with(f, _tool_spec(name, tool_type, call_id_param)))

    return decorate(func) if func is not None else decorate
