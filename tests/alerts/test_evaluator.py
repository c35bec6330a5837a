"""``AlertEvaluator``: rules measured on a real store fire once to a loopback webhook."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.trace import Tracer

from otel_diag.alerts import AlertEvaluator, parse_rules
from otel_diag.config import load_settings
from otel_diag.store import open_storage
from otel_diag.store.sql.engine import TenantDBManager
from tests.alerts.conftest import FakeClock, Webhook
from tests.cli.seed import agent_run, exporting_tracer


def seed(tracer: Tracer, *, failed: int, ok: int, **extra: object) -> list[str]:
    """``failed`` failing runs and ``ok`` good runs, started a minute ago."""
    start = time.time_ns() - 60_000_000_000
    ids = []
    for i in range(failed + ok):
        run_id = str(uuid.uuid4())
        kwargs = {"tool_failures": 1, "fail_run": True} if i < failed else {}
        agent_run(
            tracer,
            run_id=run_id,
            agent="planner",
            start_ns=start + i * 1_000_000,
            duration_ms=50,
            **kwargs,
            **extra,  # type: ignore[arg-type]
        )
        ids.append(run_id)
    return ids


def evaluator(
    manager: TenantDBManager, webhook: Webhook, clock: FakeClock, **rule: object
) -> AlertEvaluator:
    rules = parse_rules([{"name": "r", "webhook": webhook.url, "cooldown": "10m", **rule}])
    return AlertEvaluator(manager, rules=rules, clock=clock, interval=0.05)


def test_a_failure_rate_alert_fires_once_and_respects_the_cooldown(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    seed(tracer, failed=2, ok=1)
    alerts = evaluator(
        manager, webhook, clock, kind="failure_rate", threshold=0.5, min_runs=3, window="15m"
    )

    first = alerts.evaluate_once()
    again = alerts.evaluate_once()
    clock.advance(599)
    still = alerts.evaluate_once()

    assert [a.rule for a in first] == ["r"] and again == [] and still == []
    assert len(webhook.received) == 1
    payload = webhook.received[0]
    assert payload["rule"] == "r" and payload["kind"] == "failure_rate"
    assert payload["tenant"] == "default" and payload["status"] == "firing"
    assert payload["value"] == pytest.approx(2 / 3)
    assert payload["threshold"] == 0.5 and payload["window"] == "15m"
    details = {k: v for k, v in payload["details"].items() if k != "runs"}
    assert details == {"finished_runs": 3, "failed_runs": 2, "min_runs": 3}
    assert len(payload["details"]["runs"]) == 2  # the failed runs, not yet diagnosed
    assert [r["diagnosis"] for r in payload["details"]["runs"]] == [None, None]
    assert "66.7% (2 of 3 finished runs)" in payload["message"]
    assert payload["text"].startswith("otel-diag alert [r] tenant default:")
    assert webhook.headers[0]["Content-Type"] == "application/json"

    clock.advance(2)  # the cooldown is over and the incident is still going on
    assert len(alerts.evaluate_once()) == 1
    assert len(webhook.received) == 2


def test_a_failure_rate_below_threshold_or_min_runs_stays_quiet(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    seed(tracer, failed=1, ok=1)
    high = evaluator(manager, webhook, clock, kind="failure_rate", threshold=0.6, min_runs=1)
    few = parse_rules([{"name": "few", "kind": "failure_rate", "threshold": 0.1, "min_runs": 5}])

    assert high.evaluate_once() == []
    assert AlertEvaluator(manager, rules=few).evaluate_once() == []
    assert webhook.received == []


def test_a_resolved_incident_is_logged_once(
    manager: TenantDBManager,
    tracer: Tracer,
    webhook: Webhook,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(tracer, failed=1, ok=0)
    alerts = evaluator(manager, webhook, clock, kind="failure_rate", threshold=0.5, min_runs=1)
    assert len(alerts.evaluate_once()) == 1
    seed(tracer, failed=0, ok=3)  # now 1 of 4 failed

    with caplog.at_level(logging.WARNING, logger="otel_diag.alerts"):
        alerts.evaluate_once()
        alerts.evaluate_once()

    assert [r.getMessage() for r in caplog.records].count(
        "otel-diag alert [r] tenant=default resolved"
    ) == 1


def test_cost_per_run_names_the_most_expensive_run(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    (cheap,) = seed(tracer, failed=0, ok=1)
    (dear,) = seed(tracer, failed=0, ok=1, reported_cost=2.5)
    alerts = evaluator(manager, webhook, clock, kind="cost_per_run", threshold=1.0)

    (alert,) = alerts.evaluate_once()

    assert alert.value == pytest.approx(2.5)
    assert dear in alert.message and cheap not in alert.message
    assert [r["id"] for r in webhook.received[0]["details"]["runs"]] == [dear]


def test_cost_per_hour_scales_the_window_spend_to_an_hour(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    seed(tracer, failed=0, ok=2, reported_cost=0.25)
    quiet = evaluator(manager, webhook, clock, kind="cost_per_hour", threshold=0.6, window="1h")
    loud = parse_rules(
        [
            {
                "name": "r2",
                "kind": "cost_per_hour",
                "threshold": 5,
                "window": "5m",
                "webhook": webhook.url,
            }
        ]
    )

    assert quiet.evaluate_once() == []  # $0.50 in the last hour
    (alert,) = AlertEvaluator(manager, rules=loud, clock=clock).evaluate_once()

    assert alert.value == pytest.approx(0.5 * 12)  # $0.50 in 5 minutes = $6/h
    assert "$6.0000/h" in alert.message


def test_a_model_with_tokens_but_no_price_fires(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    seed(tracer, failed=0, ok=1, model="acme-local-7b", input_tokens=300, output_tokens=20)
    seed(tracer, failed=0, ok=1)  # gpt-4o-mini has a price
    alerts = evaluator(manager, webhook, clock, kind="unpriced_model")

    (alert,) = alerts.evaluate_once()

    assert alert.value == 320
    assert "acme-local-7b (320 tokens)" in alert.message
    assert webhook.received[0]["details"]["models"] == [
        {"model": "acme-local-7b", "calls": 1, "tokens": 320}
    ]


def test_rules_are_evaluated_per_tenant(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    seed(tracer, failed=1, ok=0)  # the default tenant only
    rules = parse_rules(
        [
            {"name": "all", "kind": "failure_rate", "threshold": 0.5, "min_runs": 1},
            {
                "name": "acme",
                "kind": "failure_rate",
                "threshold": 0.5,
                "min_runs": 1,
                "tenants": ["acme"],
            },
        ]
    )
    alerts = AlertEvaluator(manager, rules=rules, clock=clock, tenants=lambda: ["default", "acme"])

    fired = alerts.evaluate_once()

    assert [(a.rule, a.tenant) for a in fired] == [("all", "default")]


def test_a_dead_webhook_is_logged_and_never_raises(
    manager: TenantDBManager, tracer: Tracer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seed(tracer, failed=1, ok=0)
    rules = parse_rules(
        [
            {
                "name": "r",
                "kind": "failure_rate",
                "threshold": 0.5,
                "min_runs": 1,
                "webhook": "http://127.0.0.1:1/hook/secret-token",
            }
        ]
    )

    with caplog.at_level(logging.WARNING, logger="otel_diag.alerts"):
        fired = AlertEvaluator(manager, rules=rules, clock=clock).evaluate_once()

    assert len(fired) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("otel-diag alert [r] tenant=default: failure rate") for m in messages)
    failure = next(m for m in messages if "webhook" in m)
    assert "http://127.0.0.1:1" in failure and "secret-token" not in failure


def test_a_webhook_that_refuses_is_not_retried_forever(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook, clock: FakeClock
) -> None:
    seed(tracer, failed=1, ok=0)
    webhook.status = 400
    alerts = evaluator(manager, webhook, clock, kind="failure_rate", threshold=0.5, min_runs=1)

    assert len(alerts.evaluate_once()) == 1
    assert len(webhook.received) == 1


def test_an_unreachable_database_is_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TenantDBManager("postgresql+psycopg://postgres@127.0.0.1:1/x")
    rules = parse_rules([{"name": "r", "kind": "unpriced_model"}])
    alerts = AlertEvaluator(manager, rules=rules)

    with caplog.at_level(logging.ERROR, logger="otel_diag.alerts"):
        assert alerts.evaluate_once() == []
        assert alerts.evaluate_once() == []

    assert len([r for r in caplog.records if "cannot read tenant 'default'" in r.getMessage()]) == 1


def test_start_evaluates_in_the_background_and_stop_ends_the_thread(
    manager: TenantDBManager, tracer: Tracer, webhook: Webhook
) -> None:
    seed(tracer, failed=1, ok=0)
    rules = parse_rules(
        [
            {
                "name": "r",
                "kind": "failure_rate",
                "threshold": 0.5,
                "min_runs": 1,
                "webhook": webhook.url,
            }
        ]
    )
    alerts = AlertEvaluator(manager, rules=rules, interval=0.05)

    alerts.start()
    try:
        assert webhook.arrived.wait(10)
        deadline = time.monotonic() + 10
        while alerts.evaluations < 4 and time.monotonic() < deadline:
            webhook.arrived.wait(0.05)  # more evaluations, all inside the cooldown
        assert alerts.evaluations >= 4
    finally:
        assert alerts.stop(timeout=5)

    assert len(webhook.received) == 1


def test_without_rules_start_runs_no_thread(manager: TenantDBManager) -> None:
    alerts = AlertEvaluator(manager, rules=[])

    alerts.start()

    assert alerts.stop(timeout=0.1)
    assert alerts.evaluate_once() == []


def test_in_key_mode_the_evaluator_watches_the_key_tenants_not_an_invented_default(
    tmp_path,
) -> None:
    from otel_diag.config import load_settings

    url = f"sqlite:///{tmp_path / 'otel_diag_{tenant}.db'}"
    settings = load_settings(database_url=url, api_keys="acme:k-1,globex:k-2")
    manager = TenantDBManager(url, settings)
    try:
        alerts = AlertEvaluator(
            manager, rules=parse_rules([{"name": "r", "kind": "cost_per_hour", "threshold": 1}])
        )

        assert alerts.watched_tenants() == ["acme", "globex"]
    finally:
        manager.dispose()


def test_every_store_signal_fires_on_mongodb(
    make_mongo_database: Callable[[], str], webhook: Webhook, clock: FakeClock
) -> None:
    """The rules read their signals through the storage port: on MongoDB (FerretDB) the same
    runs trip the same alerts, with the same payload shapes, as on SQL."""
    url = make_mongo_database()
    settings = load_settings(database_url=url)
    with exporting_tracer(url, settings) as tracer:
        failed = seed(tracer, failed=2, ok=0)
        (dear,) = seed(tracer, failed=0, ok=1, reported_cost=2.5)
        seed(tracer, failed=0, ok=1, model="acme-local-7b", input_tokens=300, output_tokens=20)
    kinds: list[dict[str, Any]] = [
        {"kind": "failure_rate", "threshold": 0.4, "min_runs": 4},  # fires above it
        {"kind": "cost_per_run", "threshold": 1.0},
        {"kind": "cost_per_hour", "threshold": 1.0, "window": "1h"},
        {"kind": "unpriced_model"},
        {"kind": "new_error_group", "window": "1h"},
    ]
    rules = parse_rules([{"name": r["kind"], "webhook": webhook.url, **r} for r in kinds])
    storage = open_storage(settings)
    try:
        fired = AlertEvaluator(storage, rules=rules, clock=clock).evaluate_once()
    finally:
        storage.dispose()

    assert sorted(a.rule for a in fired) == sorted(str(r["kind"]) for r in kinds)
    sent = {p["kind"]: p for p in webhook.received}
    assert sent["failure_rate"]["value"] == pytest.approx(0.5)
    assert sorted(r["run_id"] for r in sent["failure_rate"]["details"]["runs"]) == sorted(failed)
    assert [r["id"] for r in sent["cost_per_run"]["details"]["runs"]] == [dear]
    assert sent["cost_per_hour"]["value"] >= 2.5
    assert sent["unpriced_model"]["details"]["models"] == [
        {"model": "acme-local-7b", "calls": 1, "tokens": 320}
    ]
    (group,) = sent["new_error_group"]["details"]["groups"]
    assert group["occurrences"] == 2 and group["runs_affected"] == 2
