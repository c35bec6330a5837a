"""Decorated code, through the real exporter, becomes the right runs / steps / error_logs rows.

Runs on SQLite and PostgreSQL (``db_url``). The LLM is the loopback fake; everything else is
real: litellm, the instrumentor, the SDK, the exporter, the projection and the database.
"""

from __future__ import annotations

from typing import Any

import pytest

from otel_diag import ErrorCollector, agent, run, step, tool
from otel_diag.instrumentation import collect_error
from otel_diag.projection.ids import run_uuid
from otel_diag.rows import to_json
from otel_diag.store.sql.engine import TenantDBManager
from tests.fakes.openai_server import FakeOpenAI, Reply

RUN_KEY = "trip-planner-2024-001"


def _rows(manager: TenantDBManager, run_key: str) -> tuple[dict, list[dict], list[dict]]:
    """The run, its steps and its errors as the API serves them (JSON)."""
    rid = run_uuid(run_key, "0" * 32)
    store = manager.tenant()
    run_row = store.run(rid)
    assert run_row is not None, "run not stored"
    steps = [to_json(s) for s in store.steps(rid)]
    return to_json(run_row), steps, [to_json(e) for e in store.errors(rid)]


def test_failed_agent_run_is_stored_with_steps_attempts_tokens_and_cost(
    stored: Any, manager: TenantDBManager, lm: Any, llm_server: FakeOpenAI
) -> None:
    llm_server.script(Reply(status=429, headers={"retry-after-ms": "1"}), Reply())
    price = sum(
        lm.cost_per_token(model="openai/gpt-4o-mini", prompt_tokens=11, completion_tokens=7)
    )

    @tool
    def search_flights(query: str) -> list[str]:
        raise ConnectionError(f"flight API unreachable for {query}")

    @agent(name="planner")
    def plan(goal: str) -> list[str]:
        answer = lm.completion(
            model="openai/gpt-4o-mini",
            api_base=llm_server.url,
            api_key="sk-test",
            messages=[{"role": "user", "content": goal}],
            num_retries=1,
        )
        for _ in range(3):
            try:
                return search_flights(answer.choices[0].message.content)
            except ConnectionError:
                last = "retrying"
        raise RuntimeError(f"no flights after 3 attempts ({last})")

    with pytest.raises(RuntimeError), run("trip-planner", run_id=RUN_KEY):
        plan("Lisbon to Tokyo")

    run_row, steps, errors = _rows(manager, RUN_KEY)
    assert run_row["name"] == "trip-planner"
    assert run_row["status"] == "failed"
    assert run_row["llm_calls"] == 2 and run_row["tool_calls"] == 3
    assert (run_row["input_tokens"], run_row["output_tokens"]) == (11, 7)
    assert run_row["cost_usd"] == pytest.approx(price)

    by_kind: dict[str, list[dict]] = {}
    for s in steps:
        by_kind.setdefault(s["kind"], []).append(s)
    assert [s["step_name"] for s in by_kind["agent"]] == ["planner"]
    llm = sorted(by_kind["llm"], key=lambda s: s["attempt"])
    assert [(s["attempt"], s["status"]) for s in llm] == [(1, "error"), (2, "ok")]
    assert llm[1]["model"] == "gpt-4o-mini" and llm[1]["input_tokens"] == 11
    assert llm[1]["cost_usd"] == pytest.approx(price)
    tools = sorted(by_kind["tool"], key=lambda s: s["attempt"])
    assert [(s["step_name"], s["attempt"], s["status"]) for s in tools] == [
        ("search_flights", 1, "error"),
        ("search_flights", 2, "error"),
        ("search_flights", 3, "error"),
    ]

    llm_errors = [e for e in errors if e["source"] == "llm"]
    assert [(e["error_category"], e["attempt"], e["model"]) for e in llm_errors] == [
        ("rate_limit", 1, "gpt-4o-mini")
    ]
    tool_errors = sorted(
        (e for e in errors if e["step_name"] == "search_flights"), key=lambda e: e["attempt"]
    )
    assert [(e["source"], e["error_category"], e["attempt"]) for e in tool_errors] == [
        ("tool", "dependency", 1),
        ("tool", "dependency", 2),
        ("tool", "dependency", 3),
    ]
    assert all(e["error_type"] == "ConnectionError" for e in tool_errors)
    final = [e for e in errors if e["error_type"] == "RuntimeError"]
    # The agent's own RuntimeError is one failure; the workflow span only re-recorded it.
    assert [(e["step_name"], e["propagated_to"]) for e in final] == [
        ("planner", ["invoke_workflow trip-planner"])
    ]
    assert "sk-test" not in str(errors)


def test_worker_activity_errors_are_stored_as_failed_steps(
    stored: Any, manager: TenantDBManager
) -> None:
    with run("billing", run_id="billing-77"):
        with step("charge", attempt=1):
            pass
        collect_error("charge", TimeoutError("gateway timed out"), attempt=2)
        ErrorCollector().log_error("validation", ValueError("amount must be positive"))

    run_row, steps, errors = _rows(manager, "billing-77")
    charge = sorted((s for s in steps if s["step_name"] == "charge"), key=lambda s: s["attempt"])
    assert [(s["kind"], s["attempt"], s["status"]) for s in charge] == [
        ("activity", 1, "ok"),
        ("activity", 2, "error"),
    ]
    assert {(e["step_name"], e["source"], e["error_category"], e["attempt"]) for e in errors} == {
        ("charge", "activity", "timeout", 2),
        ("invoke_workflow billing", "validation", "validation", 1),
    }
    assert run_row["error_count"] == 2
