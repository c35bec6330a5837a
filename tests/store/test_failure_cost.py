"""The cost of failure, with exact figures on SQLite, PostgreSQL and MongoDB (FerretDB).

Three runs played through the real SDK and exporter, priced from litellm's own map:

- A (agent planner, failed, diagnosed by the rules as ``dependency``): one LLM call of
  1000 + 100 tokens, then a flight search that fails three times (two retried attempts);
- B (agent writer, succeeded in the end): step ``plan`` fails once after its LLM answered
  500 + 50 tokens (a parse error) and is retried; inside that first attempt the LLM call
  itself was rate-limited once and retried (nested retried attempts, counted once);
- C (agent writer, failed, not diagnosed): 200 + 20 tokens, then a ZeroDivisionError.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from opentelemetry.trace import Tracer

from otel_diag.diagnosis.service import DiagnosticsService
from otel_diag.rows import FailureCostRow, Spend
from otel_diag.store.port import Storage
from tests.diagnosis.scenarios import seed
from tests.diagnosis.scenarios.catalog import FLIGHTS_DOWN, PARSE_PLAN, RATE_LIMIT
from tests.diagnosis.scenarios.spans import Err, agent, llm, step, tool, workflow
from tests.prices import cost

MODEL = "gpt-4o-mini"

RUN_A = workflow(
    "trip",
    [
        agent(
            "planner",
            [
                llm(tokens=(1000, 100)),
                tool("search_flights", attempt=1, fail=FLIGHTS_DOWN, handled=True),
                tool("search_flights", attempt=2, fail=FLIGHTS_DOWN, handled=True),
                tool("search_flights", attempt=3, fail=FLIGHTS_DOWN),
            ],
        )
    ],
)
RUN_B = workflow(
    "post",
    [
        agent(
            "writer",
            [
                step(
                    "plan",
                    [llm(attempt=1, fail=RATE_LIMIT, handled=True), llm(tokens=(500, 50))],
                    attempt=1,
                    fail=PARSE_PLAN,
                    handled=True,
                ),
                step("plan", [llm(tokens=(0, 0))], attempt=2),
            ],
        )
    ],
)
RUN_C = workflow(
    "post",
    [
        agent(
            "writer",
            [
                llm(tokens=(200, 20)),
                step("merge", fail=Err("ZeroDivisionError", "division by zero")),
            ],
        )
    ],
)


@pytest.fixture
def seeded(storage: Storage, store_tracer: Tracer) -> Storage:
    a = seed(store_tracer, RUN_A, str(uuid.uuid4()))
    seed(store_tracer, RUN_B, str(uuid.uuid4()))
    seed(store_tracer, RUN_C, str(uuid.uuid4()))
    settings = replace(storage.settings, diagnosis="rules")
    DiagnosticsService(manager=storage, settings=settings).analyze_failure(a)
    return storage


def test_failed_runs_and_retried_attempts_cost_by_category_and_agent(
    seeded: Storage,
) -> None:
    got = seeded.tenant().failure_cost(None, None)

    a, b, c = cost(MODEL, 1000, 100), cost(MODEL, 500, 50), cost(MODEL, 200, 20)
    assert got.failed_runs == Spend(2, 1200, 120, pytest.approx(a + c, abs=1e-9))
    # search_flights #1 and #2 (nothing spent), plan #1 and the LLM call retried inside it:
    # 4 attempts, the LLM answer inside plan #1 counted once
    assert got.retried_attempts == Spend(4, 500, 50, pytest.approx(b, abs=1e-9))
    assert got.by_category == (
        FailureCostRow("dependency", Spend(1, 1000, 100, pytest.approx(a)), Spend(2)),
        FailureCostRow("output_parse", Spend(), Spend(1, 500, 50, pytest.approx(b))),
        FailureCostRow("undiagnosed", Spend(1, 200, 20, pytest.approx(c)), Spend()),
        FailureCostRow("rate_limit", Spend(), Spend(1)),
    )
    assert got.by_agent == (
        FailureCostRow("planner", Spend(1, 1000, 100, pytest.approx(a)), Spend(2)),
        FailureCostRow(
            "writer", Spend(1, 200, 20, pytest.approx(c)), Spend(2, 500, 50, pytest.approx(b))
        ),
    )


def test_the_window_bounds_what_is_counted(seeded: Storage) -> None:
    from datetime import UTC, datetime, timedelta

    later = datetime.now(UTC) + timedelta(minutes=1)
    empty = seeded.tenant().failure_cost(later, None)
    assert empty.failed_runs == Spend() and empty.retried_attempts == Spend()
    assert empty.by_category == () and empty.by_agent == ()
