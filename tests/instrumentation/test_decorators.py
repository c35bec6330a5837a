"""@agent and @tool: exact spans for every function shape, and no change to the function."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import traceback
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_diag import agent, tool
from otel_diag import semconv as sc
from tests.instrumentation.conftest import Spans


class Upstream(RuntimeError):
    pass


def test_bare_tool_makes_one_execute_tool_span_with_genai_attributes(spans: Spans) -> None:
    @tool
    def search_flights(query: str) -> list[str]:
        return [query.upper()]

    assert search_flights("lis") == ["LIS"]
    span = spans.one("execute_tool search_flights")
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        sc.GEN_AI_OPERATION_NAME: "execute_tool",
        sc.GEN_AI_TOOL_NAME: "search_flights",
        sc.GEN_AI_TOOL_TYPE: "function",
    }
    assert span.events == ()


def test_agent_with_options_names_the_span_and_the_agent(spans: Spans) -> None:
    @agent(name="planner")
    def plan(goal: str) -> str:
        return goal

    plan("x")
    span = spans.one("invoke_agent planner")
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert span.attributes[sc.GEN_AI_AGENT_NAME] == "planner"


def test_tool_options_set_name_type_and_call_id(spans: Spans) -> None:
    @tool(name="db_lookup", tool_type="datastore")
    def lookup(key: str, tool_call_id: str | None = None) -> str:
        return key

    lookup("k", tool_call_id="call_42")
    lookup("k2")
    first, second = spans.named("execute_tool db_lookup")
    assert first.attributes[sc.GEN_AI_TOOL_TYPE] == "datastore"
    assert first.attributes[sc.GEN_AI_TOOL_CALL_ID] == "call_42"
    assert sc.GEN_AI_TOOL_CALL_ID not in second.attributes


def test_nested_agent_tool_spans_form_a_tree(spans: Spans) -> None:
    @tool
    def fetch() -> int:
        return 1

    @agent
    def boss() -> int:
        return fetch() + fetch()

    assert boss() == 2
    root = spans.one("invoke_agent boss")
    children = spans.named("execute_tool fetch")
    assert len(children) == 2
    assert all(c.parent is not None and c.parent.span_id == root.context.span_id for c in children)
    assert all(c.context.trace_id == root.context.trace_id for c in children)


def test_exception_is_reraised_unchanged_and_recorded(spans: Spans) -> None:
    original = Upstream("flights API answered 503 Service Unavailable")

    @tool
    def search() -> None:
        raise original

    with pytest.raises(Upstream) as caught:
        search()
    assert caught.value is original
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "search"  # the user's raising frame is still the innermost one

    span = spans.one("execute_tool search")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith("Upstream: flights API answered 503")
    assert span.attributes[sc.ERROR_TYPE].endswith("Upstream")
    assert span.attributes[sc.ERROR_SOURCE] == "tool"
    assert span.attributes[sc.ERROR_CATEGORY] == "dependency"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes[sc.EXCEPTION_MESSAGE] == "flights API answered 503 Service Unavailable"
    assert "raise original" in event.attributes[sc.EXCEPTION_STACKTRACE]
    assert event.attributes[sc.ERROR_SOURCE] == "tool"


def test_outer_spans_reuse_the_innermost_classification(spans: Spans) -> None:
    @tool
    def connect() -> None:
        raise ConnectionRefusedError("connection refused by db")

    @agent
    def worker() -> None:
        connect()

    with pytest.raises(ConnectionRefusedError):
        worker()
    for name in ("execute_tool connect", "invoke_agent worker"):
        span = spans.one(name)
        assert span.attributes[sc.ERROR_SOURCE] == "tool"
        assert span.attributes[sc.ERROR_CATEGORY] == "dependency"
        assert len(span.events) == 1


def test_async_function_keeps_coroutine_nature_and_records(spans: Spans) -> None:
    @agent
    async def think(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @tool
    async def broken() -> None:
        await asyncio.sleep(0)
        raise TimeoutError("upstream slow")

    assert inspect.iscoroutinefunction(think)
    assert asyncio.run(think(21)) == 42
    with pytest.raises(TimeoutError):
        asyncio.run(broken())
    assert spans.one("invoke_agent think").status.status_code is StatusCode.UNSET
    failed = spans.one("execute_tool broken")
    assert failed.attributes[sc.ERROR_CATEGORY] == "timeout"


def test_generator_span_covers_the_iteration_and_is_current_only_inside(spans: Spans) -> None:
    @tool
    def inner() -> int:
        return 0

    @tool
    def pages(n: int) -> Iterator[int]:
        for i in range(n):
            inner()  # started while the generator runs: a child of its span
            yield i

    @tool
    def between() -> None:
        return None

    gen = pages(2)
    assert inspect.isgeneratorfunction(pages)
    assert spans.all == []  # lazily started, like the generator itself
    out = []
    for item in gen:
        out.append(item)
        between()  # the consumer's code is NOT inside the generator's span
    assert out == [0, 1]
    span = spans.one("execute_tool pages")
    inner_parents = [s.parent and s.parent.span_id for s in spans.named("execute_tool inner")]
    assert inner_parents == [span.context.span_id] * 2
    assert [s.parent for s in spans.named("execute_tool between")] == [None, None]


def test_generator_send_throw_close_and_return_value(spans: Spans) -> None:
    @tool
    def echo() -> Iterator[int]:
        total = 0
        while True:
            try:
                got = yield total
            except KeyError:
                got = 100
            if got is None:
                return
            total += got

    gen = echo()
    assert next(gen) == 0
    assert gen.send(5) == 5
    assert gen.throw(KeyError("k")) == 105
    with pytest.raises(StopIteration):
        gen.send(None)
    assert spans.one("execute_tool echo").status.status_code is StatusCode.UNSET

    closed = echo()
    next(closed)
    closed.close()
    assert len(spans.named("execute_tool echo")) == 2


def test_generator_failure_is_recorded_and_reraised(spans: Spans) -> None:
    boom = ValueError("bad page token")

    @tool
    def pages() -> Iterator[int]:
        yield 1
        raise boom

    gen = pages()
    assert next(gen) == 1
    with pytest.raises(ValueError) as caught:
        next(gen)
    assert caught.value is boom
    span = spans.one("execute_tool pages")
    assert span.attributes[sc.ERROR_CATEGORY] == "validation"


def test_async_generator(spans: Spans) -> None:
    @agent
    async def stream(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @agent
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise ConnectionError("peer reset")

    async def consume() -> list[int]:
        return [i async for i in stream(3)]

    async def consume_failing() -> None:
        async for _ in failing():
            pass

    assert inspect.isasyncgenfunction(stream)
    assert asyncio.run(consume()) == [0, 1, 2]
    with pytest.raises(ConnectionError):
        asyncio.run(consume_failing())
    assert spans.one("invoke_agent stream").status.status_code is StatusCode.UNSET
    assert spans.one("invoke_agent failing").attributes[sc.ERROR_CATEGORY] == "dependency"


def test_methods_static_and_class_methods(spans: Spans) -> None:
    class Crew:
        factor = 3

        def __init__(self) -> None:
            self.base = 10

        @agent
        def run(self, x: int) -> int:
            return self.base + x

        @tool
        @staticmethod
        def double(x: int) -> int:
            return 2 * x

        @tool
        @classmethod
        def triple(cls, x: int) -> int:
            return cls.factor * x

    crew = Crew()
    assert crew.run(1) == 11
    assert Crew.double(2) == 4 and crew.double(2) == 4
    assert Crew.triple(2) == 6
    assert spans.one("invoke_agent run")
    assert len(spans.named("execute_tool double")) == 2
    assert spans.one("execute_tool triple")


def test_signature_and_metadata_survive(spans: Spans) -> None:
    def search(query: str, *, limit: int = 5) -> list[str]:
        """Search things."""
        return [query] * limit

    decorated = tool(search)
    assert inspect.signature(decorated) == inspect.signature(search)
    assert decorated.__name__ == "search" and decorated.__doc__ == "Search things."
    assert decorated.__wrapped__ is search  # type: ignore[attr-defined]


def test_disabled_telemetry_returns_the_function_itself_and_makes_no_span(spans: Spans) -> None:
    def f(x: int) -> int:
        return x

    assert tool(enable_telemetry=False)(f) is f
    assert agent(enable_telemetry=False)(f) is f
    tool(enable_telemetry=False)(f)(1)
    assert spans.all == []


def test_content_is_not_recorded_by_default(spans: Spans, capture_off: None) -> None:
    @tool
    def login(user: str, password: str) -> str:
        return "token"

    login("ann", "hunter2")
    attrs = spans.one("execute_tool login").attributes
    assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs
    assert sc.GEN_AI_TOOL_CALL_RESULT not in attrs


def test_captured_content_is_redacted_and_truncated(spans: Spans, capture_on: None) -> None:
    @tool
    def call_api(url: str, payload: str) -> dict[str, str]:
        return {"status": "ok", "api_key": "sk-abcdefghijklmnopqrstuvwx"}

    class Planner:
        @agent
        def plan(self, goal: str) -> str:
            return "plan for " + goal

    call_api("https://bob:s3cret-pass@api.example/v1", "x" * 10_000)
    Planner().plan("Tokyo")
    tool_attrs = spans.one("execute_tool call_api").attributes
    args = tool_attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert "s3cret-pass" not in args and "[REDACTED]" in args
    assert '"url"' in args and '"payload"' in args
    assert "truncated" in args and len(args) < 4200
    result = tool_attrs[sc.GEN_AI_TOOL_CALL_RESULT]
    assert "sk-abcdefghijklmnopqrstuvwx" not in result and '"status": "ok"' in result
    agent_attrs = spans.one("invoke_agent plan").attributes
    assert agent_attrs[sc.INPUT_VALUE] == '{"goal": "Tokyo"}'  # self is left out
    assert agent_attrs[sc.OUTPUT_VALUE] == "plan for Tokyo"


def test_a_call_after_a_failure_in_the_same_parent_is_the_next_attempt(spans: Spans) -> None:
    calls = {"n": 0}

    @tool
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("reset")
        return "ok"

    @agent
    def caller() -> str:
        for _ in range(3):
            try:
                return flaky()
            except ConnectionError:
                continue
        raise AssertionError("unreachable")

    @agent
    def other() -> str:
        calls["n"] = 0
        with contextlib.suppress(ConnectionError):
            flaky()
        return "done"

    caller()
    other()
    attempts = [s.attributes.get(sc.STEP_ATTEMPT, 1) for s in spans.named("execute_tool flaky")]
    assert attempts == [1, 2, 3, 1]  # a new parent starts again at 1


def test_instrumentation_failure_never_reaches_user_code(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_diag.instrumentation import tracing

    monkeypatch.setattr(tracing, "RAISE_INTERNAL_ERRORS", False)

    class BrokenTracer:
        def start_span(self, *a: object, **k: object) -> None:
            raise RuntimeError("tracer exploded")

    @tool
    def add(a: int, b: int) -> int:
        return a + b

    monkeypatch.setattr(tracing._holder, "tracer", BrokenTracer())
    assert add(1, 2) == 3
