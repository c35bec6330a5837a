"""Alerts: rules in config.toml, evaluated periodically by ``otel-diag serve``.

``serve`` builds one :class:`AlertEvaluator` over its store and calls ``start()`` /
``stop(timeout)``; a bad rule raises :class:`AlertRuleError` from the constructor, with the
reason, so serve refuses to start instead of running without the alert.
"""

from otel_diag.alerts.evaluator import AlertEvaluator
from otel_diag.alerts.notify import Alert
from otel_diag.alerts.rules import KINDS, AlertRule, AlertRuleError, load_rules, parse_rules

__all__ = [
    "KINDS",
    "Alert",
    "AlertEvaluator",
    "AlertRule",
    "AlertRuleError",
    "load_rules",
    "parse_rules",
]
