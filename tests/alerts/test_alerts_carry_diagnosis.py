"""Alerts carry the diagnosis: what failed, what the diagnosis says, and where to look.

A failure-rate alert names the newest failed runs of its window and an error-group alert
its groups, each with the latest diagnosis (root cause, category, resume step, confidence)
and links to the run in the console (``OTEL_DIAG_PUBLIC_URL``) and to its trace
(``OTEL_DIAG_TRACE_URL_TEMPLATE``). Checked on what a real loopback webhook receives; the
reports are the real rules diagnosis of runs played through the real exporter.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from opentelemetry.trace import Tracer

from otel_diag.alerts import AlertEvaluator, parse_rules
from otel_diag.config import Settings
from otel_diag.diagnosis.service import DiagnosticsService
from otel_diag.store.sql.engine import TenantDBManager
from tests.alerts.conftest import FakeClock, Webhook
from tests.diagnosis.scenarios import SCENARIOS, seed

FLIGHTS = next(s for s in SCENARIOS if s.name == "dependency_down_retries_exhausted")
PUBLIC = "http://otel-diag.example:4318/"
JAEGER = "http://jaeger.example:16686/trace/{trace_id}"


def _settings(manager: TenantDBManager) -> Settings:
    return replace(
        manager.settings, diagnosis="rules", public_url=PUBLIC, trace_url_template=JAEGER
    )


def _alerts(manager: TenantDBManager, webhook: Webhook, clock: FakeClock, **rule: object):
    rules = parse_rules([{"name": "r", "webhook": webhook.url, "cooldown": "1h", **rule}])
    return AlertEvaluator(manager, _settings(manager), rules=rules, clock=clock, interval=0.05)


def test_a_failure_rate_alert_names_its_failed_runs_with_their_diagnosis_and_links(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    store = manager.tenant()
    diagnosed = store.resolve_run(seed(tracer, FLIGHTS.root))
    undiagnosed = store.resolve_run(seed(tracer, FLIGHTS.root, str(uuid.uuid4())))
    assert diagnosed and undiagnosed
    report = DiagnosticsService(manager=manager, settings=_settings(manager)).analyze_failure(
        diagnosed
    )

    fired = _alerts(
        manager, webhook, clock, kind="failure_rate", threshold=0.5, min_runs=1
    ).evaluate_once()

    assert len(fired) == 1 and len(webhook.received) == 1
    payload = webhook.received[0]
    runs = {r["run_id"]: r for r in payload["details"]["runs"]}
    assert set(runs) == {str(diagnosed), str(undiagnosed)}
    first = runs[str(diagnosed)]
    assert first["diagnosis"] == {
        "report_id": str(report.id),
        "run_id": str(diagnosed),
        "root_cause_analysis": report.root_cause_analysis,
        "error_category": "dependency",
        "resume_step": "search_flights",
        "confidence_score": report.confidence_score,
        "llm_provider": "rules",
        "llm_model": None,
        "created_at": report.created_at.isoformat(),
    }
    run = store.run(diagnosed)
    assert run is not None
    assert first["console_url"] == f"http://otel-diag.example:4318/runs/{diagnosed}"
    assert first["trace_url"] == f"http://jaeger.example:16686/trace/{run.trace_id}"
    assert runs[str(undiagnosed)]["diagnosis"] is None  # alerted before its diagnosis
    # chat webhooks read only `text`: it carries the diagnosis and the console link
    assert "Diagnosis: " in payload["text"] and "resume at search_flights" in payload["text"]
    assert first["console_url"] in payload["text"]


def test_an_error_group_alert_carries_the_groups_latest_diagnosis_and_links(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    store = manager.tenant()
    rid = store.resolve_run(seed(tracer, FLIGHTS.root))
    assert rid
    report = DiagnosticsService(manager=manager, settings=_settings(manager)).analyze_failure(rid)

    _alerts(manager, webhook, clock, kind="new_error_group", window="15m").evaluate_once()

    group = webhook.received[0]["details"]["groups"][0]
    assert group["latest_diagnosis"]["report_id"] == str(report.id)
    assert group["latest_diagnosis"]["resume_step"] == "search_flights"
    assert group["latest_diagnosis"]["confidence_score"] == report.confidence_score
    assert group["console_url"] == f"http://otel-diag.example:4318/runs/{rid}"
    assert group["trace_url"].startswith("http://jaeger.example:16686/trace/")
    assert "Diagnosis: " in webhook.received[0]["text"]
