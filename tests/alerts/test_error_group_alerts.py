"""Error-group alerts: a group never seen before, and a group back after a quiet period."""

from __future__ import annotations

import time

import pytest

from otel_diag.alerts import AlertEvaluator, parse_rules
from otel_diag.alerts.rules import AlertRuleError
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from tests.alerts.conftest import FakeClock, Webhook
from tests.store.test_error_groups import failed_run

HOUR = 3600 * 10**9


def evaluator(manager: TenantDBManager, webhook: Webhook, clock: FakeClock, **rule: object):
    rules = parse_rules([{"name": "g", "webhook": webhook.url, "cooldown": "1h", **rule}])
    return AlertEvaluator(manager, rules=rules, clock=clock, interval=0.05)


def test_each_new_error_group_alerts_once_even_inside_another_groups_cooldown(
    exporter: ErrorLogSpanExporter, manager: TenantDBManager, webhook: Webhook, clock: FakeClock
) -> None:
    now = time.time_ns()
    exporter.export(failed_run("disk full on node 3", now - 30 * 24 * HOUR, step="store"))
    exporter.export(failed_run("disk full on node 9", now - HOUR // 10, step="store"))
    exporter.export(failed_run("card 4242 declined", now - HOUR // 10, step="charge"))
    alerts = evaluator(manager, webhook, clock, kind="new_error_group", window="15m")

    first = alerts.evaluate_once()
    clock.advance(60)
    exporter.export(failed_run("token 9f8e7d6c expired", time.time_ns(), step="auth"))
    second = alerts.evaluate_once()
    clock.advance(60)
    third = alerts.evaluate_once()

    assert [[g["step_name"] for g in a.details["groups"]] for a in first] == [["charge"]]
    assert [[g["step_name"] for g in a.details["groups"]] for a in second] == [["auth"]]
    assert third == []  # both groups are inside their own cooldown
    assert len(webhook.received) == 2
    payload = webhook.received[0]
    assert payload["kind"] == "new_error_group"
    assert "1 new error group in the last 15m" in payload["message"]
    group = payload["details"]["groups"][0]
    assert group["error_type"] == "Exception" and group["occurrences"] == 1
    assert group["first_seen"] == group["last_seen"]


def test_a_group_back_after_a_quiet_week_alerts_as_a_regression(
    exporter: ErrorLogSpanExporter, manager: TenantDBManager, webhook: Webhook, clock: FakeClock
) -> None:
    now = time.time_ns()
    exporter.export(failed_run("disk full on node 3", now - 30 * 24 * HOUR, step="store"))
    exporter.export(failed_run("disk full on node 9", now - HOUR // 10, step="store"))
    exporter.export(failed_run("poll 1 failed", now - 2 * HOUR, step="poll"))
    exporter.export(failed_run("poll 2 failed", now - HOUR // 10, step="poll"))
    alerts = evaluator(manager, webhook, clock, kind="error_group_regression", quiet="7d")

    (alert,) = alerts.evaluate_once()

    assert [g["step_name"] for g in alert.details["groups"]] == ["store"]
    assert "error group back after a quiet" in alert.message


def test_quiet_is_refused_on_a_kind_it_does_not_apply_to() -> None:
    with pytest.raises(AlertRuleError, match="quiet applies to kind error_group_regression"):
        parse_rules([{"name": "x", "kind": "new_error_group", "quiet": "1d"}])
