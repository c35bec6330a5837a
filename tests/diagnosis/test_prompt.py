"""The diagnosis prompt: built from the stored context, within budget, redacted."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Tracer

from otel_diag.diagnosis.llm import load_litellm, token_counter
from otel_diag.diagnosis.prompt import DEFAULT_BUDGET, build_prompt
from otel_diag.error_collector import ErrorCollector
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.scenarios import long_run, seed

MODEL = "gpt-4o-mini"


def _context(manager: TenantDBManager, tracer: Tracer, n_steps: int) -> dict[str, Any]:
    run_key = seed(tracer, long_run(n_steps))
    context = ErrorCollector(manager=manager).build_diagnostic_context(run_key)
    assert context is not None
    return context


def test_a_50_step_run_fits_in_2000_tokens_and_keeps_what_failed(
    manager: TenantDBManager, tracer: Tracer
) -> None:
    context = _context(manager, tracer, 50)
    assert len(context["steps"]) >= 50
    for prompt in (build_prompt(context), build_prompt(context, count_tokens=token_counter(MODEL))):
        tokens = load_litellm().token_counter(model=MODEL, messages=prompt.messages)
        assert tokens <= 2000
        assert prompt.estimated_tokens <= DEFAULT_BUDGET
    user = prompt.messages[1]["content"]
    assert user.count("check_inventory [tool] error") == 3  # every failed attempt is shown
    assert "ConnectionError" in user and "inventory API unreachable" in user
    assert "omitted" in user  # successful steps far from the failure were folded
    assert "check_inventory" in prompt.step_names and "worker" in prompt.step_names


def test_a_small_run_is_shown_whole(manager: TenantDBManager, tracer: Tracer) -> None:
    context = _context(manager, tracer, 8)
    prompt = build_prompt(context)
    assert prompt.level == 0
    user = prompt.messages[1]["content"]
    assert "omitted" not in user
    for step in context["steps"]:
        assert step["name"] in user


def test_compaction_shrinks_until_the_budget_holds() -> None:
    run = {
        "id": "r1", "name": "big", "status": "failed", "service": "svc", "llm_calls": 0,
        "tool_calls": 300, "tokens": [0, 0], "cost_usd": None, "error_count": 40,
    }  # fmt: skip
    steps = [
        {"name": f"tool_{i}", "kind": "tool", "status": "error" if i % 10 == 0 else "ok",
         "attempt": 1, "start_ms": i, "duration_ms": 1.0}
        for i in range(300)
    ]  # fmt: skip
    errors = [
        {"step": f"tool_{i}", "source": "tool", "category": "tool_error", "type": "KeyError",
         "message": "x" * 400, "attempt": 1, "stack": "\n".join(["a.py:1 in f"] * 10)}
        for i in range(0, 300, 10)
    ]  # fmt: skip
    prompt = build_prompt({"run": run, "steps": steps, "errors": errors}, budget=1500)
    assert prompt.level > 0
    assert prompt.estimated_tokens <= 1500
    assert "more error shapes omitted" in prompt.messages[1]["content"]


def test_secrets_in_any_field_are_redacted_before_sending() -> None:
    secret = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234"
    run = {
        "id": "r1", "name": f"job token={secret}", "status": "failed", "service": None,
        "llm_calls": 0, "tool_calls": 1, "tokens": [0, 0], "cost_usd": None, "error_count": 1,
    }  # fmt: skip
    steps = [{"name": "call_api", "kind": "tool", "status": "error", "attempt": 1,
              "start_ms": 0, "duration_ms": 2.0}]  # fmt: skip
    errors = [{"step": "call_api", "source": "tool", "category": "auth", "type": "HTTPError",
               "message": f"401 for Authorization: Bearer {secret}", "attempt": 1}]  # fmt: skip
    prompt = build_prompt({"run": run, "steps": steps, "errors": errors})
    text = "".join(m["content"] for m in prompt.messages)
    assert secret not in text
    assert "[REDACTED]" in text
