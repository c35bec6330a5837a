"""The ``diagnosis_failures`` alert: LLM diagnoses that fell back to the rules.

Reports come from the real ``DiagnosticsService`` and litellm; only the provider is fake
(a loopback OpenAI-compatible server answering 500).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from opentelemetry.trace import Tracer

from otel_diag.alerts import AlertEvaluator, parse_rules
from otel_diag.config import Settings, load_settings
from otel_diag.diagnosis.service import DiagnosticsService
from otel_diag.rows import RULES_PROVIDER
from otel_diag.store.sql.engine import TenantDBManager
from tests.alerts.conftest import FakeClock, Webhook
from tests.cli.seed import agent_run
from tests.fakes.openai_server import FakeOpenAI, Reply


def failed_run(tracer: Tracer) -> str:
    run_id = str(uuid.uuid4())
    agent_run(
        tracer,
        run_id=run_id,
        agent="planner",
        start_ns=time.time_ns() - 5_000_000_000,
        duration_ms=20,
        tool_failures=2,
        fail_run=True,
    )
    return run_id


def settings_for(db_url: str, llm: FakeOpenAI, **extra: Any) -> Settings:
    return load_settings(
        database_url=db_url,
        llm_model="openai/gpt-4o-mini",
        llm_api_base=llm.url,
        llm_api_key="test-key",
        llm_timeout=5.0,
        llm_retries=0,
        diagnosis_ttl=0,
        spend_cap_usd_per_hour=0.0,
        **extra,
    )


def test_an_llm_diagnosis_that_fell_back_to_rules_fires_the_alert(
    db_url: str, manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    run_id = failed_run(tracer)
    with FakeOpenAI(default=Reply(status=500)) as llm:
        settings = settings_for(db_url, llm)
        report = DiagnosticsService(manager=manager, settings=settings).analyze_failure(run_id)
    assert report.llm_provider == RULES_PROVIDER
    rules = parse_rules([{"name": "diag", "kind": "diagnosis_failures", "webhook": webhook.url}])
    alerts = AlertEvaluator(manager, settings, rules=rules, clock=clock)

    (alert,) = alerts.evaluate_once()

    assert alert.value == 1
    assert "1 fell back to rules after the LLM failed" in alert.message
    details = webhook.received[0]["details"]
    assert details["llm_fallbacks"] == 1 and details["reports"] == 1
    assert sum(details["fallback_reasons"].values()) == 1
    assert alerts.evaluate_once() == []  # one incident, one alert


def test_rules_chosen_by_configuration_are_not_a_diagnosis_failure(
    db_url: str, manager: TenantDBManager, tracer: Tracer, clock: FakeClock
) -> None:
    run_id = failed_run(tracer)
    with FakeOpenAI(default=Reply(status=500)) as llm:
        settings = settings_for(db_url, llm, diagnosis="rules")
        report = DiagnosticsService(manager=manager, settings=settings).analyze_failure(run_id)
        assert llm.requests == []
    assert report.llm_provider == RULES_PROVIDER
    rules = parse_rules([{"name": "diag", "kind": "diagnosis_failures"}])

    assert AlertEvaluator(manager, settings, rules=rules, clock=clock).evaluate_once() == []
