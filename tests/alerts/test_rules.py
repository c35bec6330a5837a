"""Alert rules are validated when serve starts: a bad rule is rejected with its reason."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from otel_diag.alerts import AlertEvaluator, AlertRuleError, load_rules, parse_rules
from otel_diag.config import load_settings
from otel_diag.store.sql.engine import TenantDBManager


def test_a_minimal_rule_gets_the_defaults_of_its_kind() -> None:
    (rule,) = parse_rules([{"name": "spend", "kind": "cost_per_hour", "threshold": 2}])

    assert rule.threshold == 2.0
    assert rule.window == timedelta(hours=1)
    assert rule.cooldown == timedelta(minutes=30)
    assert rule.webhook is None and rule.tenants is None


def test_counting_kinds_have_a_default_threshold_of_one() -> None:
    unpriced, diagnosis = parse_rules(
        [{"name": "a", "kind": "unpriced_model"}, {"name": "b", "kind": "diagnosis_failures"}]
    )

    assert unpriced.threshold == diagnosis.threshold == 1.0
    assert unpriced.fires(1) and not unpriced.fires(0)


def test_the_webhook_defaults_to_the_settings_webhook() -> None:
    (rule,) = parse_rules([{"name": "x", "kind": "unpriced_model"}], "https://hooks.example/x")

    assert rule.webhook == "https://hooks.example/x"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"name": "x", "kind": "latency"}, "kind must be one of"),
        ({"name": "x", "kind": "failure_rate", "treshold": 0.5}, "unknown key 'treshold'"),
        ({"name": "x", "kind": "failure_rate"}, "threshold is required for failure_rate"),
        ({"name": "x", "kind": "failure_rate", "threshold": 1.5}, "must be from 0 up to"),
        ({"name": "x", "kind": "cost_per_run", "threshold": "lots"}, "threshold must be a number"),
        ({"name": "x", "kind": "cost_per_run", "threshold": -1}, "must be at least 0"),
        (
            {"name": "x", "kind": "cost_per_run", "threshold": 1, "window": "soon"},
            "window: not a duration",
        ),
        ({"name": "x", "kind": "cost_per_run", "threshold": 1, "cooldown": 0}, "must be positive"),
        (
            {"name": "x", "kind": "cost_per_run", "threshold": 1, "webhook": "ftp://x"},
            "http:// or https://",
        ),
        ({"name": "x", "kind": "failure_rate", "threshold": 0.5, "min_runs": 0}, "min_runs"),
        ({"name": "x", "kind": "unpriced_model", "tenants": ["Not OK"]}, "invalid tenant id"),
        ({"kind": "unpriced_model"}, "name must be a non-empty string"),
    ],
)
def test_a_bad_rule_is_rejected_with_its_position_name_and_reason(
    raw: dict[str, Any], reason: str
) -> None:
    good = {"name": "fine", "kind": "unpriced_model"}

    with pytest.raises(AlertRuleError) as err:
        parse_rules([good, raw])

    assert str(err.value).startswith("alert rule #2")
    assert reason in str(err.value)


def test_two_rules_with_one_name_are_rejected() -> None:
    with pytest.raises(AlertRuleError, match="already has the name 'x'"):
        parse_rules([{"name": "x", "kind": "unpriced_model"}] * 2)


def write_config(text: str) -> Path:
    home = Path(os.environ["OTEL_DIAG_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def test_rules_come_from_the_config_file_alert_tables() -> None:
    write_config(
        """
[otel_diag]
database_url = "sqlite:///unused.db"

[[otel_diag.alerts]]
name = "agents failing"
kind = "failure_rate"
threshold = 0.25
window = "10m"
min_runs = 3
cooldown = "1h"
webhook = "http://127.0.0.1:9/hook"
tenants = ["default", "acme"]

[[otel_diag.alerts]]
name = "no price"
kind = "unpriced_model"
"""
    )

    failing, unpriced = load_rules(load_settings())

    assert (failing.name, failing.kind, failing.threshold, failing.min_runs) == (
        "agents failing",
        "failure_rate",
        0.25,
        3,
    )
    assert failing.window == timedelta(minutes=10) and failing.cooldown == timedelta(hours=1)
    assert failing.tenants == ("default", "acme")
    assert unpriced.kind == "unpriced_model"


def test_the_evaluator_refuses_to_start_on_a_bad_rule_in_the_config(tmp_path: Path) -> None:
    write_config('[[otel_diag.alerts]]\nname = "x"\nkind = "cost_per_run"\n')
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    manager = TenantDBManager(settings.resolved_database_url, settings)

    with pytest.raises(AlertRuleError, match=r"alert rule #1 \('x'\): threshold is required"):
        AlertEvaluator(manager, settings)


def test_a_malformed_alerts_entry_is_a_config_error() -> None:
    write_config('[otel_diag]\nalerts = "everything"\n')

    with pytest.raises(ValueError, match="alerts must be a list"):
        load_settings()


def test_a_bad_default_webhook_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_DIAG_ALERT_WEBHOOK", "not-a-url")

    with pytest.raises(AlertRuleError, match="OTEL_DIAG_ALERT_WEBHOOK"):
        load_rules(load_settings())
