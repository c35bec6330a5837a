"""LiteLLMInstrumentor against a real litellm talking to a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode

from otel_diag import agent, run, step, tool
from otel_diag import semconv as sc
from otel_diag.instrumentation.litellm_instrumentor import LiteLLMInstrumentor
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.instrumentation.conftest import Spans

MODEL = "openai/gpt-4o-mini"
FAST_RETRY = {"retry-after-ms": "1"}  # the OpenAI SDK honours it: retries without back-off


def ask(lm: Any, server: FakeOpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries", 0)
    return lm.completion(
        model=MODEL,
        api_base=server.url,
        api_key="sk-test-not-a-real-key",
        messages=[{"role": "user", "content": "Plan a trip to Lisbon"}],
        **kwargs,
    )


def expected_cost(lm: Any, prompt: int = 11, completion: int = 7) -> float:
    return sum(lm.cost_per_token(model=MODEL, prompt_tokens=prompt, completion_tokens=completion))


def test_completion_span_has_model_usage_finish_reasons_and_litellm_cost(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    llm_server.script(Reply(content="Take the tram", model="gpt-4o-mini-2024-07-18"))
    response = ask(lm, llm_server, temperature=0.2, max_tokens=64)
    assert response.choices[0].message.content == "Take the tram"
    span = spans.one("chat gpt-4o-mini")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attrs = dict(span.attributes or {})
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-fake"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attrs[sc.GEN_AI_USAGE_COST] == pytest.approx(expected_cost(lm))
    assert sc.GEN_AI_INPUT_MESSAGES not in attrs  # content capture is off by default


@pytest.mark.parametrize(
    ("reply", "kwargs", "exc_name", "category"),
    [
        (Reply(status=429, error_message="Rate limit reached"), {}, "RateLimitError", "rate_limit"),
        (Reply(status=500), {}, "InternalServerError", "dependency"),
        (Reply(status=503), {}, "ServiceUnavailableError", "dependency"),
        (Reply(status=401, error_message="Incorrect API key"), {}, "AuthenticationError", "auth"),
        (
            Reply(
                status=400,
                error_message="This model's maximum context length is 8192 tokens",
                error_code="context_length_exceeded",
            ),
            {},
            "ContextWindowExceededError",
            "context_length",
        ),
        (
            Reply(status=400, error_message="Invalid value for 'top_p'"),
            {},
            "BadRequestError",
            "invalid_request",
        ),
        (Reply(delay=2.0), {"timeout": 0.3}, "Timeout", "timeout"),
    ],
)
def test_litellm_errors_map_to_categories_and_leave_unchanged(
    lm: Any,
    llm_server: FakeOpenAI,
    spans: Spans,
    reply: Reply,
    kwargs: dict[str, Any],
    exc_name: str,
    category: str,
) -> None:
    llm_server.script(reply)
    with pytest.raises(Exception) as caught:
        ask(lm, llm_server, **kwargs)
    exc = caught.value
    assert type(exc).__name__ == exc_name and type(exc).__module__.startswith("litellm")
    span = spans.one("chat gpt-4o-mini")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_SOURCE] == "llm"
    assert span.attributes[sc.ERROR_CATEGORY] == category
    assert span.attributes[sc.ERROR_TYPE] == f"{type(exc).__module__}.{type(exc).__qualname__}"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    (event,) = span.events
    assert event.attributes[sc.EXCEPTION_TYPE] == span.attributes[sc.ERROR_TYPE]
    assert "sk-test-not-a-real-key" not in event.attributes[sc.EXCEPTION_STACKTRACE]
    if reply.status != 200:
        assert span.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == reply.status


def test_stream_span_ends_when_the_stream_is_consumed(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    llm_server.script(Reply(content="Lisbon by tram, then the ferry."))
    stream = ask(lm, llm_server, stream=True)
    assert isinstance(stream, lm.CustomStreamWrapper)
    assert spans.named("chat gpt-4o-mini") == []  # still open while the answer streams
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Lisbon by tram, then the ferry."
    attrs = spans.one("chat gpt-4o-mini").attributes
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[sc.GEN_AI_USAGE_COST] == pytest.approx(expected_cost(lm))


def test_stream_closed_early_ends_the_span(lm: Any, llm_server: FakeOpenAI, spans: Spans) -> None:
    llm_server.script(Reply(content="a long answer " * 20))
    stream = ask(lm, llm_server, stream=True)
    next(iter(stream))
    stream.close()
    span = spans.one("chat gpt-4o-mini")
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None


def test_async_completion_stream_and_embeddings(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    async def main() -> str:
        common = {"api_base": llm_server.url, "api_key": "sk-test", "max_retries": 0}
        msgs = [{"role": "user", "content": "hi"}]
        await lm.acompletion(model=MODEL, messages=msgs, **common)
        stream = await lm.acompletion(model=MODEL, messages=msgs, stream=True, **common)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await lm.aembedding(model="openai/text-embedding-3-small", input=["a", "b"], **common)
        return text

    llm_server.script(Reply(content="one"), Reply(content="two"), Reply(prompt_tokens=5))
    assert asyncio.run(main()) == "two"
    chats = spans.named("chat gpt-4o-mini")
    assert len(chats) == 2
    assert all(s.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7 for s in chats)
    emb = spans.one("embeddings text-embedding-3-small")
    assert emb.attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert emb.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 5
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in emb.attributes
    assert emb.attributes[sc.GEN_AI_USAGE_COST] > 0


def test_sync_embedding(lm: Any, llm_server: FakeOpenAI, spans: Spans) -> None:
    lm.embedding(
        model="openai/text-embedding-3-small", api_base=llm_server.url, api_key="sk-t", input="x"
    )
    assert spans.one("embeddings text-embedding-3-small").attributes[sc.GEN_AI_USAGE_INPUT_TOKENS]


def test_num_retries_show_as_sibling_attempt_spans(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    llm_server.script(
        Reply(status=429, headers=FAST_RETRY), Reply(status=500, headers=FAST_RETRY), Reply()
    )
    with step("summarize"):
        response = ask(lm, llm_server, num_retries=2, max_retries=None)
    assert response.usage.completion_tokens == 7
    assert len(llm_server.requests) == 3
    first, second, third = sorted(spans.named("chat gpt-4o-mini"), key=lambda s: s.start_time)
    assert [s.attributes.get(sc.STEP_ATTEMPT, 1) for s in (first, second, third)] == [1, 2, 3]
    assert first.attributes[sc.ERROR_CATEGORY] == "rate_limit"
    assert second.attributes[sc.ERROR_CATEGORY] == "dependency"
    assert third.status.status_code is StatusCode.UNSET
    assert third.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    parent = spans.one("summarize").context.span_id
    assert all(s.parent.span_id == parent for s in (first, second, third))


def test_calling_again_after_a_failure_in_the_same_step_is_the_next_attempt(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    llm_server.script(Reply(status=429), Reply())
    with step("summarize"):
        for _ in range(2):
            try:
                ask(lm, llm_server)
                break
            except lm.RateLimitError:
                continue
    attempts = sorted(spans.named("chat gpt-4o-mini"), key=lambda s: s.start_time)
    assert [s.attributes.get(sc.STEP_ATTEMPT, 1) for s in attempts] == [1, 2]


def test_agent_tool_llm_tree_inside_a_run(lm: Any, llm_server: FakeOpenAI, spans: Spans) -> None:
    @tool
    def summarize() -> str:
        return str(ask(lm, llm_server).choices[0].message.content)

    @agent
    def planner() -> str:
        return summarize()

    with run("trip", run_id="run-llm"):
        planner()
    chat = spans.one("chat gpt-4o-mini")
    assert chat.parent.span_id == spans.one("execute_tool summarize").context.span_id
    assert chat.attributes[sc.RUN_ID] == "run-llm"


def test_messages_are_captured_redacted_only_when_enabled(
    lm: Any, llm_server: FakeOpenAI, spans: Spans, capture_on: None
) -> None:
    llm_server.script(Reply(content="use key sk-abcdefghijklmnopqrstuvwxyz123"))
    lm.completion(
        model=MODEL,
        api_base=llm_server.url,
        api_key="sk-t",
        max_retries=0,
        messages=[{"role": "user", "content": "my password=hunter2 please"}],
    )
    attrs = spans.one("chat gpt-4o-mini").attributes
    assert "hunter2" not in attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert '"role": "user"' in attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert "sk-abcdefghijklmnopqrstuvwxyz123" not in attrs[sc.GEN_AI_OUTPUT_MESSAGES]
    assert '"finish_reason": "stop"' in attrs[sc.GEN_AI_OUTPUT_MESSAGES]


def test_unpriced_model_has_no_cost_and_the_call_still_works(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    lm.completion(
        model="openai/house-model-v1",
        api_base=llm_server.url,
        api_key="sk-t",
        max_retries=0,
        messages=[{"role": "user", "content": "hi"}],
    )
    attrs = spans.one("chat house-model-v1").attributes
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert sc.GEN_AI_USAGE_COST not in attrs


def test_suppressed_instrumentation_is_not_traced(
    lm: Any, llm_server: FakeOpenAI, spans: Spans
) -> None:
    with suppress_instrumentation():
        ask(lm, llm_server)
    assert spans.all == []


def test_uninstrument_restores_the_exact_originals(litellm_module: Any, spans: Spans) -> None:
    import openai._base_client as base

    names = ("completion", "acompletion", "embedding", "aembedding", "completion_with_retries")
    before = {n: getattr(litellm_module, n) for n in names}
    sleep_before = base.SyncAPIClient.__dict__["_sleep_for_retry"]
    instrumentor = LiteLLMInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    assert all(getattr(litellm_module, n) is not before[n] for n in names)
    instrumentor.uninstrument()
    assert all(getattr(litellm_module, n) is before[n] for n in names)
    assert base.SyncAPIClient.__dict__["_sleep_for_retry"] is sleep_before
    assert instrumentor.instrumentation_dependencies() == ("litellm >= 1.100",)
