"""One span model: every convention for the same meaning lands in the same field."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from otel_diag.spans.from_sdk import from_readable_span
from tests.factories import exception_event, make_span


@pytest.mark.parametrize(
    "attrs",
    [
        {  # current GenAI semantic conventions
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
        },
        {  # older gen_ai names
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 10,
            "gen_ai.usage.completion_tokens": 5,
        },
        {  # OpenInference
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
        },
        {  # OpenLLMetry
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "llm.usage.prompt_tokens": 10,
            "llm.usage.completion_tokens": 5,
        },
    ],
    ids=["genai", "genai-old", "openinference", "openllmetry"],
)
def test_llm_spans_of_every_convention_normalize_the_same(attrs):
    rec = from_readable_span(make_span("llm", attributes=attrs))
    assert rec is not None
    assert (rec.step_kind, rec.provider, rec.request_model) == ("llm", "openai", "gpt-4o")
    assert (rec.input_tokens, rec.output_tokens) == (10, 5)


@pytest.mark.parametrize(
    ("attrs", "kind", "name"),
    [
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, "tool", "search"),
        ({"openinference.span.kind": "TOOL", "tool.name": "search"}, "tool", "search"),
        ({"traceloop.span.kind": "tool", "traceloop.entity.name": "search"}, "tool", "search"),
        ({"traceloop.span.kind": "task", "traceloop.entity.name": "rank"}, "activity", "rank"),
        ({"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"}, "agent", "planner"),
        (
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
            "agent",
            "planner",
        ),
        ({"openinference.span.kind": "AGENT", "agent.name": "planner"}, "agent", "planner"),
        (
            {"otel_diag.step.name": "charge-card", "otel_diag.step.attempt": 2},
            "activity",
            "charge-card",
        ),
        ({"gen_ai.operation.name": "invoke_workflow"}, None, None),
        ({"http.request.method": "GET"}, None, None),
    ],
)
def test_step_kind_and_name_come_from_whichever_convention_is_present(attrs, kind, name):
    rec = from_readable_span(make_span("tool-span", attributes=attrs))
    assert rec is not None
    assert (rec.step_kind, rec.step_name) == (kind, name)


def test_openllmetrys_entity_name_is_an_agent_name_only_on_an_agent_span():
    tool = from_readable_span(
        make_span(
            "search.tool",
            attributes={"traceloop.span.kind": "tool", "traceloop.entity.name": "search"},
        )
    )
    agent = from_readable_span(
        make_span(
            "planner.agent",
            attributes={"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"},
        )
    )
    assert tool is not None and agent is not None
    assert (tool.agent_name, tool.step_name) == (None, "search")
    assert agent.agent_name == "planner"


CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}


@pytest.mark.parametrize(
    ("span_name", "attrs", "step_name"),
    [
        ("openai.chat", CHAT, "chat gpt-4o-mini"),  # OpenLLMetry
        (
            "openai.embeddings",
            {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3"},
            "embeddings text-embedding-3",
        ),
        (  # older OpenLLMetry: the operation as llm.request.type
            "anthropic.chat",
            {"llm.request.type": "chat", "gen_ai.request.model": "claude-3-5-haiku"},
            "chat claude-3-5-haiku",
        ),
        ("openai.chat", {"gen_ai.operation.name": "chat"}, "openai.chat"),  # no model: kept
        ("draft reply", CHAT, "draft reply"),  # a name someone chose
        ("chat gpt-4o-mini", CHAT, "chat gpt-4o-mini"),
        ("openai.chat", {**CHAT, "otel_diag.step.name": "summarize"}, "summarize"),
    ],
)
def test_an_llm_span_named_after_its_library_gets_the_conventions_step_name(
    span_name, attrs, step_name
):
    rec = from_readable_span(make_span(span_name, attributes=attrs))
    assert rec is not None
    assert rec.step_name == step_name


def test_a_span_failed_if_its_status_is_error_or_it_has_an_exception_event():
    ok = from_readable_span(make_span("a"))
    by_status = from_readable_span(make_span("b", status=StatusCode.ERROR))
    by_event = from_readable_span(make_span("c", events=[exception_event("E", "m")]))
    assert ok is not None and by_status is not None and by_event is not None
    assert (ok.failed, by_status.failed, by_event.failed) == (False, True, True)


def test_ids_are_lowercase_hex_and_the_root_has_no_parent():
    rec = from_readable_span(make_span("r", trace_id=0xABC, span_id=0xDEF))
    assert rec is not None
    assert rec.trace_id == "00000000000000000000000000000abc"
    assert rec.span_id == "0000000000000def"
    assert rec.is_root


def test_a_span_recorded_by_the_sdk_reads_as_the_same_span_built_by_hand():
    """The SDK hands exporters ``BoundedAttributes`` behind a proxy; the record is the same."""
    import random

    from tests.factories import agent_trace, through_sdk

    by_hand = agent_trace(failing=True, rng=random.Random(3))
    recorded = through_sdk(by_hand)
    assert type(recorded[0].attributes).__name__ == "mappingproxy"  # what export() receives
    for hand, sdk in zip(by_hand, recorded, strict=True):
        a, b = from_readable_span(hand), from_readable_span(sdk)
        assert a is not None and b is not None
        assert a == b
        assert type(b.attributes) is dict  # read once, not through the proxy per lookup
    assert any(e.attributes.get("exception.stacktrace") for r in recorded for e in r.events)


def test_sdk_attributes_and_events_are_read_without_the_sdks_python_level_protocol(
    monkeypatch,
):
    """An ended SDK span's attribute dict and event list are read directly (frozen by
    ``Span.end``), not through ``BoundedAttributes``/``BoundedList`` calls per key and per
    read: an SDK that renamed those internals would fail here, not silently slow down."""
    import random

    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.util import BoundedList

    from tests.factories import agent_trace, through_sdk

    recorded = through_sdk(agent_trace(failing=True, rng=random.Random(5)))
    expected = [from_readable_span(span) for span in recorded]

    def forbidden(*_args):
        raise AssertionError("read through the SDK's Python-level protocol")

    monkeypatch.setattr(BoundedAttributes, "__iter__", forbidden)
    monkeypatch.setattr(BoundedAttributes, "__getitem__", forbidden)
    monkeypatch.setattr(BoundedList, "__iter__", forbidden)
    assert [from_readable_span(span) for span in recorded] == expected
    assert any(rec is not None and rec.events for rec in expected)
