"""The rule-based fallback against the labelled scenarios played through the real exporter:
what it gets right, and whether the confidence it states is what it measures."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.trace import Tracer

from otel_diag.classify import CATEGORIES
from otel_diag.diagnosis.rules import CONFIDENCE, MAX_CONFIDENCE, diagnose_by_rules
from otel_diag.rows import ErrorRow, Run, Step
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.scenarios import SCENARIOS, seed
from tests.diagnosis.scenarios.evaluate import (
    Outcome,
    by_stated,
    evaluate,
    expected_calibration_error,
    overall,
    report,
)

KNOWN_MISSES = {
    # The exception says "ValueError in the agent"; the cause is the LLM naming a tool that
    # does not exist. The rules have no way to tell.
    "llm_called_unknown_tool": ("category", "resume_step"),
    "hallucinated_tool_in_agent_sdk": ("category", "resume_step"),
    # An OperationalError is a storage error to the rules; the cause is a wrong password, or
    # SQL the LLM wrote.
    "database_password_rejected": ("category",),
    "llm_wrote_invalid_sql": ("category", "resume_step"),
    # A loop: the rules resume at the agent; the fix is a stop condition, and a fresh start.
    "agent_recursion_limit": ("resume_step",),
    "agent_max_iterations": ("category", "resume_step"),  # "... or time limit" reads as timeout
    # An HTTP 529 "overloaded" in a generic APIStatusError; a guardrail's own exception type.
    "provider_overloaded_529": ("category",),
    "output_guardrail_tripped": ("category", "resume_step"),
}
CALIBRATION_TOLERANCE = 0.1


def _rows(manager: TenantDBManager, run_key: str) -> tuple[Run, list[Step], list[ErrorRow]]:
    store = manager.tenant()
    rid = store.resolve_run(run_key)
    assert rid is not None
    run = store.run(rid)
    assert run is not None
    return run, store.steps(rid), store.errors(rid)


@pytest.fixture
def outcomes(manager: TenantDBManager, tracer: Tracer) -> list[Outcome]:
    return evaluate(manager, tracer)


def test_the_labelled_set_covers_the_published_failure_kinds() -> None:
    assert len(SCENARIOS) >= 40
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)
    assert {s.label.category for s in SCENARIOS} == set(CATEGORIES)


def test_the_rules_find_the_labelled_category_and_resume_step(outcomes: list[Outcome]) -> None:
    wrong = []
    for o in outcomes:
        for field, right in (("category", o.category_right), ("resume_step", o.resume_right)):
            if not right and field not in KNOWN_MISSES.get(o.scenario.name, ()):
                wrong.append(f"{o.scenario.name}: {field} {o.category}/{o.resume_step!r}")
    assert wrong == []
    figures = overall(outcomes)
    assert figures.category_accuracy >= 0.8 and figures.resume_accuracy >= 0.8


def test_the_stated_confidence_is_the_measured_accuracy_per_category(
    outcomes: list[Outcome],
) -> None:
    """Per category the rules state, mean confidence within 0.1 of how often they are right
    (category and resume step); an accuracy check on the labelled set, not a timing."""
    off = [
        f"{g.name}: states {g.confidence:.2f}, right {g.accuracy:.2f} of {g.n}"
        for g in by_stated(outcomes)
        if abs(g.gap) > CALIBRATION_TOLERANCE + 1e-9
    ]
    assert off == [], report(outcomes)
    assert expected_calibration_error(outcomes) <= CALIBRATION_TOLERANCE


def test_a_rules_diagnosis_is_honest_and_actionable(
    manager: TenantDBManager, tracer: Tracer
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "dependency_down_retries_exhausted")
    run, steps, errors = _rows(manager, seed(tracer, scenario.root, str(uuid.uuid4())))
    diagnosis = diagnose_by_rules(run, steps, errors)

    assert diagnosis.confidence_score == CONFIDENCE["dependency"] <= MAX_CONFIDENCE
    assert "search_flights" in diagnosis.root_cause_analysis
    assert "All 3 attempts failed" in diagnosis.root_cause_analysis
    assert [a.priority for a in diagnosis.recommended_actions] == list(
        range(1, len(diagnosis.recommended_actions) + 1)
    )
    assert diagnosis.recommended_actions
    assert all(a.action and a.rationale for a in diagnosis.recommended_actions)


def test_an_uncategorized_failure_gets_a_low_confidence(
    manager: TenantDBManager, tracer: Tracer
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "activity_division_by_zero")
    run, steps, errors = _rows(manager, seed(tracer, scenario.root))
    diagnosis = diagnose_by_rules(run, steps, errors)
    assert diagnosis.error_category == "internal"
    assert diagnosis.confidence_score < 0.5
