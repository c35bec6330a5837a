"""OpenLLMetry's OpenAI instrumentation (Traceloop's ``opentelemetry-instrumentation-openai``).

The real ``openai`` client calls the loopback OpenAI-compatible server (the only fake: the
provider), OpenLLMetry's instrumentor makes the spans, the real SDK hands them to
otel-diag's exporter. Its ``openai.chat`` spans become ``chat {model}`` steps with model,
tokens and cost, and a rate-limited call is a classified failure of that model.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer

from otel_diag.projection.cost import lookup_price
from otel_diag.projection.ids import run_uuid
from otel_diag.rows import to_json
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from tests.fakes.openai_server import FakeOpenAI, Reply

RUN = "openllmetry-run"


@pytest.fixture
def tracer(exporter: ErrorLogSpanExporter) -> Iterator[Tracer]:
    """The app's tracer; OpenLLMetry instruments ``openai`` on the same provider."""
    provider = TracerProvider(resource=Resource.create({"service.name": "openllmetry-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider.get_tracer("app")
    instrumentor.uninstrument()
    provider.shutdown()


def _stored(manager: TenantDBManager) -> tuple[list[dict], list[dict]]:
    store = manager.tenant()
    rid = run_uuid(RUN, "0" * 32)
    return [to_json(s) for s in store.steps(rid)], [to_json(e) for e in store.errors(rid)]


def test_a_call_and_a_rate_limited_call_are_steps_with_model_tokens_cost_and_a_category(
    tracer: Tracer, manager: TenantDBManager
) -> None:
    with FakeOpenAI() as server:
        server.script(
            Reply(content="Lisbon, then Tokyo", prompt_tokens=11, completion_tokens=7),
            Reply(status=429, error_message="Rate limit reached for gpt-4o-mini"),
        )
        client = openai.OpenAI(base_url=server.url, api_key="sk-test-key", max_retries=0)
        with tracer.start_as_current_span(
            "invoke_workflow trip", attributes={"otel_diag.run.id": RUN}
        ):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "plan a trip"}]
            )
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "book it"}]
                )

    steps, errors = _stored(manager)
    assert [(s["step_name"], s["kind"], s["status"]) for s in steps] == [
        ("chat gpt-4o-mini", "llm", "ok"),
        ("chat gpt-4o-mini", "llm", "error"),
    ]
    ok = steps[0]
    assert (ok["model"], ok["input_tokens"], ok["output_tokens"]) == ("gpt-4o-mini", 11, 7)
    price = lookup_price("gpt-4o-mini", "openai")
    assert price is not None
    assert ok["cost_usd"] == pytest.approx(11 * price.input_per_token + 7 * price.output_per_token)
    (error,) = errors
    assert (error["step_name"], error["source"], error["error_category"], error["model"]) == (
        "chat gpt-4o-mini",
        "llm",
        "rate_limit",
        "gpt-4o-mini",
    )
    assert error["error_type"] == "openai.RateLimitError"
