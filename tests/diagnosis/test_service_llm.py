"""``DiagnosticsService.analyze_failure`` against a loopback OpenAI-compatible server.

Each case asserts the report stored in ``diagnostic_reports``: the LLM's when its answer is
valid, the rules' (``llm_provider='rules'``, with the reason) when the request fails, times
out, or answers something unusable.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from opentelemetry.trace import Tracer

from otel_diag.diagnosis.rules import MAX_CONFIDENCE, diagnose_by_rules
from otel_diag.diagnosis.service import (
    DiagnosisDisabledError,
    DiagnosticsService,
    NothingToDiagnoseError,
    RunNotFoundError,
    amended_confidence,
)
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.conftest import make_settings, report_counts, run_uuid, valid_answer
from tests.diagnosis.scenarios import long_run, seed
from tests.fakes.openai_server import FakeOpenAI, Reply

SECRET = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_a_valid_llm_answer_is_stored_with_every_field(
    service: DiagnosticsService,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    run_id = seed_run()
    report = service.analyze_failure(run_id)

    assert report.llm_provider == "openai"
    assert report.llm_model == "gpt-4o-mini"
    assert report.root_cause_analysis.startswith("The flight search API refused")
    assert list(report.recommended_actions) == [
        {"priority": 1, "action": "Restore the flight API", "rationale": "it is down"},
        {"priority": 2, "action": "Add a circuit breaker", "rationale": "fail fast"},
    ]
    assert report.resume_step == "search_flights"
    assert report.confidence_score == 0.87
    assert report.error_category == "dependency"
    assert report.prompt_tokens == 11 and report.completion_tokens == 7
    assert report.cost_usd is not None and report.cost_usd > 0
    assert report.latency_ms > 0
    assert report.fallback_reason is None and report.reused_from is None
    assert report.fingerprint
    assert service.get_latest_diagnosis(run_id) == report
    assert report_counts(manager) == {run_uuid(manager, run_id): 1}
    # The request asked for JSON against a schema whose resume_step lists the run's steps.
    body = fake_llm.requests[0].body
    schema = body["response_format"]["json_schema"]["schema"]
    assert "search_flights" in schema["properties"]["resume_step"]["enum"]
    assert body["temperature"] == 0


UNUSABLE = [
    (Reply(content="The flight API is down, resume at search_flights."), "invalid_json"),
    (Reply(content=""), "invalid_json"),
    (Reply(content="null"), "invalid_answer"),
    (Reply(content=valid_answer(confidence_score=7)), "invalid_answer"),
    (Reply(content=valid_answer(recommended_actions={"1": "restore"})), "invalid_answer"),
    (Reply(content=valid_answer(resume_step=["search_flights"])), "invalid_answer"),
    (Reply(content={"root_cause_analysis": "down"}), "invalid_answer"),
    (Reply(status=429, error_message="Rate limit reached"), "rate_limited"),
    (Reply(status=500, error_message="upstream exploded"), "llm_unavailable"),
    (Reply(status=401, error_message="Incorrect API key"), "llm_auth"),
]


def test_an_unusable_llm_answer_falls_back_to_the_rules(
    service: DiagnosticsService,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    """Not JSON, empty, wrong types, a bad schema, 429, 500, 401: each one a rules report
    with its reason, never a lost report."""
    for n, (reply, reason) in enumerate(UNUSABLE, start=1):
        fake_llm.script(reply)
        report = service.analyze_failure(seed_run(), force=True)

        assert report.llm_provider == "rules", reason
        assert report.llm_model is None
        assert report.fallback_reason == reason
        assert report.error_category == "dependency"
        assert report.resume_step == "search_flights"
        assert 0 < report.confidence_score <= MAX_CONFIDENCE
        assert report.recommended_actions[0]["priority"] == 1
        assert len(fake_llm.requests) == n, reason  # llm_retries=0: one request each


def test_an_unknown_resume_step_keeps_the_llms_analysis_and_takes_the_rules_step(
    service: DiagnosticsService,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    fake_llm.script(Reply(content=valid_answer(resume_step="book_flights")))
    run_id = seed_run()
    report = service.analyze_failure(run_id)
    store = service.store
    rid = store.resolve_run(run_id)
    assert rid is not None
    run = store.run(rid)
    assert run is not None
    rules = diagnose_by_rules(run, store.steps(rid), store.errors(rid))

    assert report.llm_provider == "openai" and report.llm_model == "gpt-4o-mini"
    assert report.root_cause_analysis.startswith("The flight search API refused")
    assert report.recommended_actions[0]["action"] == "Restore the flight API"
    assert report.resume_step == "search_flights"  # the rules' choice for this run
    assert report.fallback_reason == "unknown_step"
    # lowered: the LLM's 0.87 minus 0.2, and never above the rules' own confidence
    assert report.confidence_score == amended_confidence(0.87, rules.confidence_score)
    assert report.confidence_score == min(0.67, rules.confidence_score)
    assert report.prompt_tokens == 11  # the request's cost stays on the report
    assert amended_confidence(0.5, 0.6) == 0.3 and amended_confidence(0.1, 0.6) == 0.05


def test_an_llm_timeout_falls_back_to_the_rules_within_the_timeout(
    db_url: str,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    settings = make_settings(db_url, fake_llm, llm_timeout=0.5)
    fake_llm.script(Reply(delay=3, content=valid_answer()))
    report = DiagnosticsService(manager=manager, settings=settings).analyze_failure(seed_run())

    assert report.llm_provider == "rules"
    assert report.fallback_reason == "timeout"
    assert report.latency_ms is not None  # how long is a benchmark's business, not a test's


def test_transient_llm_errors_are_retried_a_bounded_number_of_times(
    db_url: str,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("otel_diag.diagnosis.llm.BACKOFF_SECONDS", 0.01)
    settings = make_settings(db_url, fake_llm, llm_retries=2)
    fake_llm.script(Reply(status=429), Reply(status=503))  # then the valid default answer
    report = DiagnosticsService(manager=manager, settings=settings).analyze_failure(seed_run())
    assert report.llm_provider == "openai"
    assert len(fake_llm.requests) == 3

    fake_llm.script(Reply(status=429), Reply(status=429), Reply(status=429), Reply(status=429))
    report = DiagnosticsService(manager=manager, settings=settings).analyze_failure(
        seed_run(), force=True
    )
    assert report.fallback_reason == "rate_limited"
    assert len(fake_llm.requests) == 3 + 3  # one request + 2 retries, never more


def test_the_prompt_never_contains_a_secret_planted_in_an_error(
    service: DiagnosticsService,
    fake_llm: FakeOpenAI,
    tracer: Tracer,
) -> None:
    run_id = seed(tracer, long_run(20, secret=SECRET))
    service.analyze_failure(run_id)

    sent = json.dumps(fake_llm.requests[0].body)
    assert "check_inventory" in sent  # the failing step is in the prompt...
    assert SECRET not in sent and SECRET[8:24] not in sent  # ...its secret is not
    assert "[REDACTED]" in sent


def test_a_stored_diagnosis_is_returned_again_until_the_errors_change(
    service: DiagnosticsService,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    run_id = seed_run()
    first = service.analyze_failure(run_id)
    again = service.analyze_failure(run_id)
    forced = service.analyze_failure(run_id, force=True)

    assert again == first
    assert forced.id != first.id
    assert len(fake_llm.requests) == 2
    latest = service.get_latest_diagnosis(run_id)
    assert latest is not None and latest.id == forced.id


def test_unknown_runs_runs_without_errors_and_diagnosis_off_are_clear_errors(
    db_url: str,
    manager: TenantDBManager,
    service: DiagnosticsService,
    tracer: Tracer,
    fake_llm: FakeOpenAI,
) -> None:
    with pytest.raises(RunNotFoundError):
        service.analyze_failure("0123456789abcdef0123456789abcdef")
    assert service.get_latest_diagnosis("no-such-run") is None

    with tracer.start_as_current_span("healthy", attributes={"otel_diag.run.id": "ok-run"}):
        pass
    with pytest.raises(NothingToDiagnoseError):
        service.analyze_failure("ok-run")

    off = DiagnosticsService(
        manager=manager, settings=make_settings(db_url, fake_llm, diagnosis="off")
    )
    with pytest.raises(DiagnosisDisabledError):
        off.analyze_failure("ok-run")
    assert fake_llm.requests == []
