"""Alert rules: read from ``[[otel_diag.alerts]]`` tables in config.toml, checked up front.

A rule that cannot work (unknown kind, misspelt key, a threshold that is not a number, a
webhook that is not an http(s) URL) is rejected when ``serve`` starts, with the rule's
position, name and the reason, instead of failing silently at 3 a.m. Example::

    [[otel_diag.alerts]]
    name = "agents failing"
    kind = "failure_rate"    # see KINDS
    threshold = 0.5          # fires when more than half of the finished runs failed
    window = "15m"           # look-back (default per kind)
    min_runs = 5             # failure_rate only: ignore windows with fewer finished runs
    cooldown = "30m"         # at most one alert per rule and tenant (and error group) per cooldown
    webhook = "https://hooks.example.com/otel-diag"   # default: OTEL_DIAG_ALERT_WEBHOOK
    tenants = ["default"]    # default: every tenant serve has seen

    [[otel_diag.alerts]]
    name = "regressions"
    kind = "error_group_regression"   # or new_error_group: a group never seen before
    quiet = "7d"             # back after a week without an occurrence
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from otel_diag.config import Settings
from otel_diag.tenants import InvalidTenantError, validate_tenant_id
from otel_diag.timewindow import parse_duration

# kind -> (what the threshold means, default threshold or None if required, default window)
KINDS: dict[str, tuple[str, float | None, str]] = {
    "failure_rate": ("fraction of finished runs that failed, 0..1 (fires above it)", None, "15m"),
    "cost_per_run": ("USD one run may cost (fires for any run above it)", None, "1h"),
    "cost_per_hour": ("USD per hour of LLM spend over the window (fires above it)", None, "1h"),
    "unpriced_model": ("tokens a model without a price may use (fires at it)", 1.0, "1h"),
    "diagnosis_failures": ("LLM diagnoses that failed or were given up (fires at it)", 1.0, "1h"),
    "new_error_group": (
        "occurrences of an error group first seen in the window (fires at it)",
        1.0,
        "15m",
    ),
    "error_group_regression": (
        "occurrences of an error group back after `quiet` without one (fires at it)",
        1.0,
        "15m",
    ),
}
COUNT_KINDS = frozenset(
    {"unpriced_model", "diagnosis_failures", "new_error_group", "error_group_regression"}
)
"""Kinds whose threshold is a count: they fire when the count reaches it."""
GROUP_KINDS = frozenset({"new_error_group", "error_group_regression"})
"""Kinds about error groups: the cooldown applies per group, so each group alerts once."""
KEYS = frozenset(
    {"name", "kind", "threshold", "window", "cooldown", "min_runs", "webhook", "tenants", "quiet"}
)
DEFAULT_COOLDOWN = "30m"
DEFAULT_MIN_RUNS = 5
DEFAULT_QUIET = "7d"


class AlertRuleError(ValueError):
    """A rule that cannot be evaluated; the message names the rule and the reason."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One validated rule."""

    name: str
    kind: str
    threshold: float
    window: timedelta
    cooldown: timedelta
    min_runs: int = DEFAULT_MIN_RUNS
    webhook: str | None = None
    tenants: tuple[str, ...] | None = None
    quiet: timedelta = timedelta(days=7)
    """error_group_regression: how long a group must have been silent to count as back."""

    def fires(self, value: float) -> bool:
        """Rates and costs fire above the threshold; counts fire when they reach it."""
        if self.kind in COUNT_KINDS:
            return value >= self.threshold
        return value > self.threshold


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{what} must be a number, not {raw!r}")
    return float(raw)


def _duration(raw: Any, what: str) -> timedelta:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f'{what} must be a duration like "15m", not {raw!r}')
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _webhook(raw: Any) -> str:
    parsed = urlparse(raw) if isinstance(raw, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"webhook must be an http:// or https:// URL, not {raw!r}")
    return str(raw)


def _tenants(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"tenants must be a list of tenant ids, not {raw!r}")
    try:
        return tuple(validate_tenant_id(t) for t in raw)
    except InvalidTenantError as exc:
        raise ValueError(str(exc)) from None


def parse_rule(raw: Mapping[str, Any], default_webhook: str | None = None) -> AlertRule:
    """One rule from its config table; ValueError with the reason if it is unusable."""
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    meaning, default_threshold, default_window = KINDS[kind]
    if "threshold" in raw:
        threshold = _number(raw["threshold"], "threshold")
    elif default_threshold is None:
        raise ValueError(f"threshold is required for {kind} ({meaning})")
    else:
        threshold = default_threshold
    if threshold < 0 or (kind == "failure_rate" and threshold >= 1):
        limit = "from 0 up to (not including) 1" if kind == "failure_rate" else "at least 0"
        raise ValueError(f"threshold for {kind} must be {limit}, not {threshold:g}")
    min_runs = raw.get("min_runs", DEFAULT_MIN_RUNS)
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 1:
        raise ValueError(f"min_runs must be a whole number of at least 1, not {min_runs!r}")
    if "quiet" in raw and kind != "error_group_regression":
        raise ValueError("quiet applies to kind error_group_regression only")
    webhook = raw.get("webhook", default_webhook)
    return AlertRule(
        name=name.strip(),
        kind=kind,
        threshold=threshold,
        window=_duration(raw.get("window", default_window), "window"),
        cooldown=_duration(raw.get("cooldown", DEFAULT_COOLDOWN), "cooldown"),
        min_runs=min_runs,
        webhook=_webhook(webhook) if webhook else None,
        tenants=_tenants(raw["tenants"]) if "tenants" in raw else None,
        quiet=_duration(raw.get("quiet", DEFAULT_QUIET), "quiet"),
    )


def parse_rules(
    raws: Sequence[Mapping[str, Any]], default_webhook: str | None = None
) -> list[AlertRule]:
    """All rules, or AlertRuleError for the first bad one (position, name, reason)."""
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raws, start=1):
        label = f"alert rule #{index}"
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
            label += f" ({raw['name']!r})"
        try:
            if not isinstance(raw, Mapping):
                raise ValueError("must be a table of keys")
            rule = parse_rule(raw, default_webhook)
        except ValueError as exc:
            raise AlertRuleError(f"{label}: {exc}") from None
        if rule.name in seen:
            raise AlertRuleError(f"{label}: another rule already has the name {rule.name!r}")
        seen.add(rule.name)
        rules.append(rule)
    return rules


def load_rules(settings: Settings) -> list[AlertRule]:
    """The rules of ``settings`` (config.toml), validated; the webhook defaults from env."""
    if settings.alert_webhook:
        try:
            _webhook(settings.alert_webhook)
        except ValueError as exc:
            raise AlertRuleError(f"OTEL_DIAG_ALERT_WEBHOOK: {exc}") from None
    return parse_rules(settings.alerts, settings.alert_webhook)
