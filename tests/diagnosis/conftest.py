"""Fixtures of the diagnosis tests: a loopback LLM, diagnosis settings, seeded runs.

The only thing faked is the LLM provider (``tests.fakes.openai_server``), reached through
the real litellm. Runs are seeded through the real SDK tracer and exporter (the root
``tracer`` fixture), never by inserting rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.trace import Tracer
from sqlalchemy import func, select

from otel_diag.config import Settings, load_settings
from otel_diag.diagnosis.service import DiagnosticsService
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.models import diagnostic_reports
from tests.diagnosis.scenarios import SCENARIOS, Scenario, seed
from tests.fakes.openai_server import FakeOpenAI, Reply

FLIGHTS = next(s for s in SCENARIOS if s.name == "dependency_down_retries_exhausted")


def valid_answer(resume_step: str | None = "search_flights", **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "root_cause_analysis": "The flight search API refused connections on all attempts.",
        "error_category": "dependency",
        "recommended_actions": [
            {"priority": 2, "action": "Add a circuit breaker", "rationale": "fail fast"},
            {"priority": 1, "action": "Restore the flight API", "rationale": "it is down"},
        ],
        "resume_step": resume_step,
        "confidence_score": 0.874,
    }
    answer.update(extra)
    return answer


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=Reply(content=valid_answer())) as server:
        yield server


def make_settings(db_url: str, server: FakeOpenAI | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "llm_model": "openai/gpt-4o-mini",
        "llm_api_base": server.url if server else "http://127.0.0.1:9/v1",
        "llm_api_key": "test-key",
        "llm_timeout": 5.0,
        "llm_retries": 0,
        "decision_wait": 0.0,
        "spend_cap_usd_per_hour": 0.0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def diag_settings(db_url: str, fake_llm: FakeOpenAI) -> Settings:
    return make_settings(db_url, fake_llm)


@pytest.fixture
def service(manager: TenantDBManager, diag_settings: Settings) -> DiagnosticsService:
    return DiagnosticsService(manager=manager, settings=diag_settings)


@pytest.fixture
def seed_run(tracer: Tracer) -> Callable[..., str]:
    """Play a scenario (default: the flight API outage) through the real exporter."""

    def make(scenario: Scenario = FLIGHTS, run_id: str | None = None) -> str:
        return seed(tracer, scenario.root, run_id or str(uuid.uuid4()))

    return make


def report_counts(manager: TenantDBManager, tenant: str | None = None) -> dict[str, int]:
    """run id -> number of stored reports."""
    with manager.get_engine(tenant).connect() as conn:
        rows = conn.execute(
            select(diagnostic_reports.c.run_id, func.count()).group_by(diagnostic_reports.c.run_id)
        ).all()
    return {str(run_id): n for run_id, n in rows}


def run_uuid(manager: TenantDBManager, ref: str, tenant: str | None = None) -> str:
    rid = manager.tenant(tenant).resolve_run(ref)
    assert rid is not None, f"run {ref} was not stored"
    return str(rid)


def poll(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Wait (bounded) for ``condition()`` to be truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
