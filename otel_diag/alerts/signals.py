"""What each alert kind measures: one store read per rule and tenant -> a value and a message.

The queries are the store's alert signals (:class:`~otel_diag.store.port.TenantStore`:
``finished_runs``, ``costly_runs``, ``cost_since``, ``unpriced_models``,
``diagnosis_outcomes``, ``new_error_groups``, ``regressed_error_groups``); this module turns
their figures into the number a rule compares with its threshold and the sentence an
operator reads. A failure-rate alert names the newest failed runs of its window and an
error-group alert its groups, each with the latest diagnosis (root cause, category, resume
step, confidence) and links to the console and the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otel_diag.alerts.rules import GROUP_KINDS, AlertRule
from otel_diag.config import Settings
from otel_diag.rows import FailedRun, to_json
from otel_diag.store.port import TenantStore
from otel_diag.timewindow import format_duration


@dataclass(frozen=True, slots=True)
class Reading:
    """A rule's measured value, whether it trips the rule, and why."""

    value: float
    tripped: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Error-group kinds: fingerprint -> the group (JSON); each group has its own cooldown."""


def describe_groups(kind: str, groups: list[dict[str, Any]], span: str) -> str:
    """The operator's sentence for error groups that are new or back."""
    what = "new error group" if kind == "new_error_group" else "error group back after a quiet"
    listed = "; ".join(
        f"{g['error_type']} in {g['step_name'] or 'unknown step'}: {g['message'][:120]!r} "
        f"({g['occurrences']} occurrence(s), {g['runs_affected']} run(s))"
        for g in groups[:5]
    )
    more = f" (+{len(groups) - 5} more)" if len(groups) > 5 else ""
    return (
        f"{len(groups)} {what}{'s' if len(groups) != 1 else ''} in the last {span}: {listed}{more}"
    )


FAILED_RUNS_LISTED = 5
"""Failed runs a failure-rate alert names (the newest), each with its latest diagnosis."""


def run_links(settings: Settings, run_id: object, trace_id: str | None) -> dict[str, str | None]:
    """Where a person looks at a run: the web console (``OTEL_DIAG_PUBLIC_URL``) and the
    trace viewer (``OTEL_DIAG_TRACE_URL_TEMPLATE``); None for what is not configured."""
    return {"console_url": settings.console_url(run_id), "trace_url": settings.trace_url(trace_id)}


def failed_run_json(run: FailedRun, settings: Settings) -> dict[str, Any]:
    """A failed run as an alert payload carries it: the run, its latest diagnosis (root
    cause, category, resume step, confidence; null until diagnosed) and its links."""
    return {
        "run_id": str(run.id),
        "name": run.name,
        "agent": run.agent_name,
        "trace_id": run.trace_id,
        "started_at": to_json(run)["started_at"],
        "errors": run.error_count,
        "diagnosis": to_json(run.latest_diagnosis) if run.latest_diagnosis else None,
        **run_links(settings, run.id, run.trace_id),
    }


def headline(details: dict[str, Any]) -> str | None:
    """One sentence for chat webhooks: the newest diagnosis an alert carries, with its link."""
    entries = [
        *((r.get("diagnosis"), r) for r in details.get("runs", ())),
        *((g.get("latest_diagnosis"), g) for g in details.get("groups", ())),
    ]
    for diagnosis, entry in entries:
        if diagnosis:
            link = entry.get("console_url") or entry.get("trace_url")
            return (
                f"Diagnosis: {diagnosis['root_cause_analysis'][:300]} "
                f"(category {diagnosis['error_category'] or 'unknown'}, resume at "
                f"{diagnosis['resume_step'] or 'the start'}, confidence "
                f"{diagnosis['confidence_score']:.2f})" + (f" {link}" if link else "")
            )
    return None


def _usd(value: float) -> str:
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def measure(
    store: TenantStore, rule: AlertRule, now: datetime, settings: Settings | None = None
) -> Reading:
    """Evaluate ``rule`` on one tenant's database at ``now``; ``settings`` make the links."""
    settings = settings or Settings()
    since = now - rule.window
    span = format_duration(rule.window)
    if rule.kind == "failure_rate":
        finished, failed = store.finished_runs(since)
        rate = failed / finished if finished else 0.0
        enough = finished >= rule.min_runs
        fires = enough and rule.fires(rate)
        runs = store.recent_failed_runs(since, FAILED_RUNS_LISTED) if fires else []
        return Reading(
            value=rate,
            tripped=fires,
            message=(
                f"failure rate {rate:.1%} ({failed} of {finished} finished runs) over the last "
                f"{span}, threshold {rule.threshold:.1%}"
            ),
            details={
                "finished_runs": finished,
                "failed_runs": failed,
                "min_runs": rule.min_runs,
                "runs": [failed_run_json(r, settings) for r in runs],
            },
        )
    if rule.kind == "cost_per_run":
        costly = store.costly_runs(since, rule.threshold)
        top = max((r.cost_usd for r in costly), default=0.0)
        message = (
            f"{len(costly)}{'+' if len(costly) >= 10 else ''} runs in the last {span} cost more "
            f"than {_usd(rule.threshold)}"
        )
        if costly:
            message += f" (most: {_usd(top)}, run {costly[0].id})"
        return Reading(top, rule.fires(top), message, {"runs": [to_json(r) for r in costly]})
    if rule.kind == "cost_per_hour":
        spent = store.cost_since(since)
        hourly = spent * 3600.0 / rule.window.total_seconds()
        return Reading(
            hourly,
            rule.fires(hourly),
            f"LLM spend {_usd(hourly)}/h over the last {span} ({_usd(spent)} in total), "
            f"threshold {_usd(rule.threshold)}/h",
            {"spent_usd": round(spent, 9), "window_seconds": rule.window.total_seconds()},
        )
    if rule.kind == "unpriced_model":
        models = [m for m in store.unpriced_models(since) if rule.fires(m.tokens)]
        tokens = float(sum(m.tokens for m in models))
        listed = ", ".join(f"{m.model} ({m.tokens:,} tokens)" for m in models[:5])
        return Reading(
            tokens,
            bool(models),
            f"{len(models)} model(s) used tokens without a known price in the last {span}: "
            f"{listed or 'none'}",
            {"models": [to_json(m) for m in models]},
        )
    if rule.kind == "diagnosis_failures":
        outcome = store.diagnosis_outcomes(since)
        failures = float(outcome.llm_fallbacks + outcome.failed_runs)
        return Reading(
            failures,
            rule.fires(failures),
            f"{failures:.0f} diagnosis failure(s) in the last {span}: "
            f"{outcome.llm_fallbacks} fell back to rules after the LLM failed, "
            f"{outcome.failed_runs} given up",
            to_json(outcome),
        )
    if rule.kind in GROUP_KINDS:
        if rule.kind == "new_error_group":
            found = store.new_error_groups(since)
        else:
            found = store.regressed_error_groups(since, rule.quiet)
        tripped = {
            g.fingerprint: {
                **to_json(g),
                **run_links(settings, g.latest_run_id, g.latest_trace_id),
            }
            for g in found
            if rule.fires(g.occurrences)
        }
        return Reading(
            float(len(tripped)),
            bool(tripped),
            describe_groups(rule.kind, list(tripped.values()), span),
            {"groups": list(tripped.values())},
            tripped,
        )
    raise AssertionError(f"unvalidated alert kind {rule.kind!r}")
