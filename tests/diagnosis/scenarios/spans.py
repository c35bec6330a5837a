"""A tiny description language for failing agent runs, played through a real SDK tracer.

A scenario is a tree of :class:`Node` (workflow -> agents -> steps -> tools / LLM calls).
:func:`play` runs it: every node is a real ``tracer.start_as_current_span`` and every
failure a real Python exception raised inside it, so the SDK records the exception events
and ERROR statuses exactly as it would for an application (a propagated exception is
recorded again on each enclosing span). ``handled=True`` means the parent caught it (a
retry that moved on); ``wrap`` re-raises a child's exception as another one (``from``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import SpanKind, Tracer

_CLASSES: dict[tuple[str, str], type[Exception]] = {}
_BUILTINS: dict[str, type[Exception]] = {
    "ConnectionError": ConnectionError,
    "ConnectionRefusedError": ConnectionRefusedError,
    "TimeoutError": TimeoutError,
    "KeyError": KeyError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "PermissionError": PermissionError,
    "RuntimeError": RuntimeError,
    "ZeroDivisionError": ZeroDivisionError,
    "Exception": Exception,
}


@dataclass(frozen=True)
class Err:
    """An exception to raise: a builtin name, ``json.JSONDecodeError``, or ``module.Class``."""

    type: str
    message: str

    def make(self) -> Exception:
        if self.type in _BUILTINS:
            return _BUILTINS[self.type](self.message)
        if self.type == "json.JSONDecodeError":
            try:
                json.loads(self.message)
            except json.JSONDecodeError as exc:
                return exc
            raise AssertionError("JSONDecodeError scenario needs text that is not JSON")
        module, _, name = self.type.rpartition(".")
        cls = _CLASSES.get((module, name))
        if cls is None:
            cls = _CLASSES[(module, name)] = type(name, (Exception,), {"__module__": module})
        return cls(self.message)


@dataclass
class Node:
    span_name: str
    attributes: dict[str, Any]
    children: list[Node] = field(default_factory=list)
    fail: Err | None = None
    handled: bool = False
    wrap: Err | None = None
    kind: SpanKind = SpanKind.INTERNAL


def workflow(name: str, children: list[Node], *, wrap: Err | None = None) -> Node:
    return Node(
        f"invoke_workflow {name}",
        {"gen_ai.operation.name": "invoke_workflow", "otel_diag.run.name": name},
        children,
        wrap=wrap,
    )


def agent(
    name: str, children: list[Node], *, wrap: Err | None = None, fail: Err | None = None
) -> Node:
    return Node(
        f"invoke_agent {name}",
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name},
        children,
        fail=fail,
        wrap=wrap,
    )


def step(
    name: str,
    children: list[Node] | None = None,
    *,
    attempt: int = 1,
    fail: Err | None = None,
    handled: bool = False,
    wrap: Err | None = None,
) -> Node:
    return Node(
        name,
        {"otel_diag.step.name": name, "otel_diag.step.attempt": attempt},
        children or [],
        fail=fail,
        handled=handled,
        wrap=wrap,
    )


def tool(name: str, *, attempt: int = 1, fail: Err | None = None, handled: bool = False) -> Node:
    return Node(
        f"execute_tool {name}",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function",
            "otel_diag.step.attempt": attempt,
        },
        fail=fail,
        handled=handled,
    )


def llm(
    model: str = "gpt-4o-mini",
    *,
    tokens: tuple[int, int] = (800, 120),
    attempt: int = 1,
    fail: Err | None = None,
    handled: bool = False,
    provider: str = "openai",
) -> Node:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "otel_diag.step.attempt": attempt,
    }
    if fail is None:
        attrs["gen_ai.usage.input_tokens"] = tokens[0]
        attrs["gen_ai.usage.output_tokens"] = tokens[1]
    return Node(f"chat {model}", attrs, fail=fail, handled=handled, kind=SpanKind.CLIENT)


def _play(tracer: Tracer, node: Node, extra: dict[str, Any]) -> None:
    with tracer.start_as_current_span(
        node.span_name, kind=node.kind, attributes={**node.attributes, **extra}
    ):
        for child in node.children:
            try:
                _play(tracer, child, {})
            except Exception as exc:
                if child.handled:
                    continue
                if node.wrap is not None:
                    raise node.wrap.make() from exc
                raise
        if node.fail is not None:
            raise node.fail.make()


def play(tracer: Tracer, root: Node, run_id: str) -> None:
    """Run the scenario's spans through ``tracer``; the run's own failure is swallowed."""
    with contextlib.suppress(Exception):
        _play(tracer, root, {"otel_diag.run.id": run_id})


def count_steps(node: Node) -> int:
    return 1 + sum(count_steps(c) for c in node.children)
