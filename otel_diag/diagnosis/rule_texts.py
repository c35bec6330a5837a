"""What the rules say for each failure category: the explanation and the actions.

Kept apart from the decision logic in :mod:`otel_diag.diagnosis.rules` so wording can
change without touching how a cause is found. Every text is built from facts already
redacted at ingest and is bounded again here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from otel_diag.diagnosis.schema import Action
from otel_diag.redact import safe_text

_QUOTA = re.compile(r"quota|billing|insufficient_quota|credit", re.I)

EXPLAIN: dict[str, str] = {
    "rate_limit": "the provider rejected the request for exceeding a rate limit",
    "quota": "the provider account's quota or credit is exhausted",
    "timeout": "the operation did not finish within its time limit",
    "auth": "the credentials or permissions it used were rejected",
    "context_length": "the input exceeded the model's context window",
    "invalid_request": "the request itself was rejected as invalid",
    "tool_error": "the tool's own code raised an unhandled exception",
    "validation": "the tool was called with arguments that failed validation",
    "output_parse": "the LLM's output could not be parsed or failed validation",
    "storage": "a database/storage operation failed",
    "dependency": "a service it depends on was unreachable or unavailable",
    "internal": "the application code raised an unexpected exception",
}

# category -> [(action, rationale)], {step}/{resume}/{producer}/{model}/{type} filled in.
ACTIONS: dict[str, list[tuple[str, str]]] = {
    "rate_limit": [
        (
            "Retry {step} with exponential backoff that honours Retry-After",
            "Rate limits are transient; immediate retries hit the same limit.",
        ),
        (
            "Lower the request rate or tokens per minute sent to {model}, or raise the limit",
            "Sustained load above the limit keeps failing however often it is retried.",
        ),
        (
            "Configure a fallback model or deployment for {step}",
            "A second deployment absorbs bursts the first one rejects.",
        ),
    ],
    "quota": [
        (
            "Check the provider account's quota, billing and credit",
            "Quota errors persist until the account is topped up or the limit raised.",
        ),
        (
            "Alert on quota usage before it runs out",
            "A budget alert turns this failure into a warning.",
        ),
    ],
    "timeout": [
        (
            "Raise the timeout of {step} or make its work smaller",
            "The call was cut off, not refused: a shorter input or longer limit lets it finish.",
        ),
        (
            "Check the latency of what {step} calls",
            "A slow dependency makes every attempt time out the same way.",
        ),
        (
            "Retry with backoff under an overall deadline",
            "Occasional slowness is then absorbed without hanging the run.",
        ),
    ],
    "auth": [
        (
            "Fix the credentials or permissions used by {step}",
            "Authentication and permission errors do not go away on retry.",
        ),
        (
            "Load the secret from where the deployment reads it, and rotate it if it leaked",
            "A missing, stale or leaked key is the usual cause.",
        ),
    ],
    "context_length": [
        (
            "Trim the input of {step}: truncate or summarize history, retrieve fewer documents",
            "The prompt must fit the model's context window.",
        ),
        (
            "Use a model with a larger context window for {step}",
            "Some inputs are legitimately large.",
        ),
        (
            "Count tokens before the call and enforce a budget",
            "Oversized prompts are then cut before they are sent.",
        ),
    ],
    "invalid_request": [
        (
            "Fix the request parameters {step} sends (see the error message)",
            "The provider rejected the request itself; resending it fails the same way.",
        ),
        (
            "Validate parameters against what the model supports before calling",
            "Catches unsupported values before they cost a request.",
        ),
    ],
    "tool_error": [
        (
            "Fix the {type} raised inside tool {step}",
            "The tool's code failed; the model's request was not the problem.",
        ),
        (
            "Return a structured error to the agent instead of raising",
            "The agent can then recover or report the failure instead of crashing.",
        ),
    ],
    "validation": [
        (
            "Tighten the schema and description of tool {step} and validate arguments from "
            "{producer} before calling it",
            "The model produced arguments the tool rejects.",
        ),
        (
            "Return the validation error to the model so it can correct the call",
            "Models fix argument mistakes when told what was wrong.",
        ),
    ],
    "output_parse": [
        (
            "Ask {producer} for structured output (JSON schema / response_format) and validate it",
            "The model's free-form answer did not match what the code expects.",
        ),
        (
            "Add a repair step that re-asks the model with the parse error",
            "One corrective retry fixes most malformed answers.",
        ),
    ],
    "storage": [
        (
            "Check the database {step} uses: connectivity, locks, constraints and schema",
            "The write or query failed in the database, not in the agent logic.",
        ),
        (
            "Make the write idempotent and retry transient lock errors",
            "Resuming then cannot duplicate rows.",
        ),
    ],
    "dependency": [
        (
            "Restore, or wait for, the service {step} calls",
            "The dependency was down or unreachable; the run cannot pass this step without it.",
        ),
        (
            "Add retries with backoff and a circuit breaker around the call",
            "Short outages are then absorbed, long ones fail fast.",
        ),
        (
            "Provide a fallback when the dependency is unavailable",
            "The run can degrade instead of failing.",
        ),
    ],
    "internal": [
        (
            "Fix the {type} in {step}",
            "The application code raised an unexpected exception.",
        ),
        (
            "Add a test that reproduces this failure",
            "It keeps the bug from coming back.",
        ),
    ],
}


def _short_type(error_type: str) -> str:
    return error_type.rsplit(".", 1)[-1] if error_type else "error"


def _key(category: str, facts: Mapping[str, Any]) -> str:
    if category == "rate_limit" and _QUOTA.search(str(facts.get("message", ""))):
        return "quota"
    return category if category in ACTIONS else "internal"


def analysis_text(facts: Mapping[str, Any]) -> str:
    """Two to four sentences: what failed where, why, and where to resume."""
    category = str(facts.get("category") or "internal")
    step = facts.get("step") or "the run"
    message = safe_text(" ".join(str(facts.get("message", "")).split()), 300)
    parts = [
        f"{str(facts.get('kind', 'step')).capitalize()} step '{step}' failed with "
        f"{_short_type(str(facts.get('error_type', '')))}: {message}.",
        f"Rule-based diagnosis: {EXPLAIN[_key(category, facts)]} ({category}).",
    ]
    attempts = facts.get("attempts") or 1
    if facts.get("retries_exhausted"):
        parts.append(
            f"All {attempts} attempts failed: retries are exhausted and retrying again "
            "without fixing the cause will fail the same way."
        )
    if facts.get("producer"):
        parts.append(f"The faulty input came from the LLM call '{facts['producer']}'.")
    propagated = facts.get("propagated_to") or []
    if propagated:
        parts.append("The exception propagated to: " + ", ".join(propagated[:5]) + ".")
    resume = facts.get("resume_step")
    parts.append(
        f"Once fixed, resume from '{resume}'." if resume else "No step to resume from: restart."
    )
    return safe_text(" ".join(parts), 2000)


def recommended_actions(
    category: str, resume: str | None, facts: Mapping[str, Any]
) -> tuple[Action, ...]:
    """The category's actions, most useful first, with the run's names filled in."""
    values = {
        "step": facts.get("step") or "the failed step",
        "resume": resume or "the start",
        "producer": facts.get("producer") or "the LLM call",
        "model": facts.get("model") or "the model",
        "type": _short_type(str(facts.get("error_type", ""))),
    }
    templates = list(ACTIONS[_key(category, facts)])
    if facts.get("retries_exhausted") and category not in ("rate_limit", "timeout", "dependency"):
        templates.insert(
            1,
            (
                "Stop retrying {step} until the cause is fixed",
                "Every attempt failed the same way; more retries only add cost and delay.",
            ),
        )
    return tuple(
        Action(i + 1, safe_text(a.format(**values), 300), safe_text(r.format(**values), 300))
        for i, (a, r) in enumerate(templates)
    )
