"""Validation of LLM answers: what is accepted, normalized, or refused (and why)."""

from __future__ import annotations

import json

import pytest

from otel_diag.diagnosis.schema import UNKNOWN_STEP, InvalidAnswer, parse_answer, response_schema
from tests.diagnosis.conftest import valid_answer

STEPS = ["planner", "search_flights", "chat gpt-4o-mini"]


def test_a_valid_answer_is_normalized() -> None:
    diagnosis = parse_answer(json.dumps(valid_answer()), STEPS)
    assert diagnosis.confidence_score == 0.87
    assert [a.priority for a in diagnosis.recommended_actions] == [1, 2]
    assert diagnosis.recommended_actions[0].action == "Restore the flight API"
    assert diagnosis.resume_step == "search_flights"
    assert diagnosis.error_category == "dependency"


def test_a_fenced_answer_and_a_differently_cased_step_are_accepted() -> None:
    text = "```json\n" + json.dumps(valid_answer(resume_step="Search_Flights")) + "\n```"
    assert parse_answer(text, STEPS).resume_step == "search_flights"


def test_null_resume_step_means_start_over() -> None:
    assert parse_answer(json.dumps(valid_answer(resume_step=None)), STEPS).resume_step is None


def test_an_unknown_category_is_dropped_not_fatal() -> None:
    answer = valid_answer(error_category="cosmic_rays")
    assert parse_answer(json.dumps(answer), STEPS).error_category is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid_json"),
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_answer"),
        ("null", "invalid_answer"),
        ("{}", "invalid_answer"),
        (json.dumps(valid_answer(resume_step=3)), "invalid_answer"),
        (json.dumps(valid_answer(recommended_actions="restore the API")), "invalid_answer"),
        (json.dumps(valid_answer(root_cause_analysis=["down"])), "invalid_answer"),
        (json.dumps(valid_answer(confidence_score=1.5)), "invalid_answer"),
        (json.dumps(valid_answer(confidence_score="high")), "invalid_answer"),
        (json.dumps(valid_answer(recommended_actions=[])), "invalid_answer"),
        (json.dumps(valid_answer(root_cause_analysis="  ")), "invalid_answer"),
        (
            json.dumps(valid_answer(recommended_actions=[{"priority": 0, "action": "x"}])),
            "invalid_answer",
        ),
        (
            json.dumps({k: v for k, v in valid_answer().items() if k != "resume_step"}),
            "invalid_answer",
        ),
    ],
)
def test_an_unusable_answer_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse_answer(text, STEPS)
    assert info.value.reason == reason


def test_an_unknown_resume_step_is_set_aside_and_the_rest_of_the_answer_kept() -> None:
    answer = parse_answer(json.dumps(valid_answer(resume_step="book_hotel")), STEPS)
    assert answer.resume_step is None
    assert answer.notes == {UNKNOWN_STEP: "book_hotel"}
    assert answer.root_cause_analysis.startswith("The flight search API refused")
    assert answer.confidence_score == 0.87 and len(answer.recommended_actions) == 2


def test_the_schema_limits_resume_step_to_the_runs_steps() -> None:
    schema = response_schema(STEPS)
    assert schema["properties"]["resume_step"]["enum"] == [*STEPS, None]
    assert set(schema["required"]) == set(schema["properties"])
    assert "enum" not in response_schema([f"s{i}" for i in range(500)])["properties"]["resume_step"]
