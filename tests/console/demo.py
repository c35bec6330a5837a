"""A day of agent runs over OTLP, for the screenshots and the layout checks: three agents,
priced and unpriced models, tools that time out, retries."""

from __future__ import annotations

import os
import random
import time

import httpx

from tests.console.conftest import send
from tests.receiver.otlp import Span

AGENTS = ("trip-planner", "researcher", "support-bot")
MODELS = ("gpt-4o-mini", "gpt-4o", "local-llama-3")  # the last one has no price
FAILURES = (
    (
        "TimeoutError",
        "search_flights: upstream https://api.flights.example/v2/search timed out after 30s",
    ),
    ("RateLimitError", "openai: rate limit reached for gpt-4o (tokens per min); retry in 12s"),
    ("ValidationError", "book_hotel: field 'check_in' expected a date, got '31/02'"),
)


def run_spans(
    rng: random.Random, start_ns: int, *, steps: int = 6, fail: bool = False
) -> list[Span]:
    """One run: workflow -> agent -> ``steps`` x (chat, tool); the last tool fails when ``fail``."""
    tid = os.urandom(16)
    agent_name = rng.choice(AGENTS)
    root = Span(
        f"invoke_workflow {agent_name}",
        trace_id=tid,
        start=start_ns,
        attributes={"otel_diag.run.id": f"run-{tid.hex()[:12]}"},
    )
    agent = Span(
        f"invoke_agent {agent_name}",
        trace_id=tid,
        parent=root.span_id,
        start=start_ns,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent_name},
    )
    spans = [root, agent]
    t = start_ns + 1_000_000
    failure = rng.choice(FAILURES)
    for i in range(steps):
        model = rng.choice(MODELS)
        chat_ns = rng.randint(300, 2500) * 1_000_000
        spans.append(
            Span(
                f"chat {model}",
                trace_id=tid,
                parent=agent.span_id,
                kind=3,
                start=t,
                duration_ns=chat_ns,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": rng.randint(400, 4000),
                    "gen_ai.usage.output_tokens": rng.randint(20, 600),
                },
            )
        )
        t += chat_ns
        tool = ("search_flights", "book_hotel", "lookup_docs")[i % 3]
        last = fail and i == steps - 1
        tool_ns = rng.randint(50, 1500) * 1_000_000
        spans.append(
            Span(
                f"execute_tool {tool}",
                trace_id=tid,
                parent=agent.span_id,
                start=t,
                duration_ns=tool_ns,
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
                error=failure[1] if last else None,
                error_type=failure[0],
            )
        )
        t += tool_ns
    root.duration_ns = agent.duration_ns = t - start_ns + 1_000_000
    if fail:
        root.error = agent.error = failure[1]
        root.error_type = agent.error_type = failure[0]
    return spans


def send_a_day(http: httpx.Client, runs: int = 120, seed: int = 7) -> None:
    """``runs`` runs spread over the last 24 hours, about a quarter of them failing."""
    rng = random.Random(seed)
    now = time.time_ns()
    batch: list[Span] = []
    for i in range(runs):
        start = now - int(rng.uniform(0, 24 * 3600) * 1e9) if i else now - 120 * 10**9
        batch += run_spans(rng, start, steps=rng.randint(2, 6), fail=rng.random() < 0.25)
        if len(batch) > 400:
            send(http, batch)
            batch = []
    if batch:
        send(http, batch)
