"""Diagnostic reports (:class:`~otel_diag.rows.Report`): from an LLM answer, the rules, or reused.

Pure functions, so what a report holds in each case is written down in one place:

- LLM: provider/model from litellm, tokens, latency and cost of the request;
  ``fallback_reason='unknown_step'`` when its resume step named no step of the run and the
  rules' choice replaced it (analysis and actions stay the LLM's).
- rules: ``llm_provider='rules'``, ``fallback_reason`` saying why (``mode_rules``,
  ``spend_cap``, ``no_credentials``, ``timeout``, ``rate_limited``, ``invalid_json``,
  ``invalid_answer``, ...).
  If an LLM request was made and failed, its tokens and cost stay on the report: that money
  was spent, and the spend cap must count it.
- reused: a copy of a recent LLM report for the same error fingerprints, ``reused_from``
  pointing at the original, no tokens, no cost.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from otel_diag.diagnosis.llm import LLMResult
from otel_diag.diagnosis.schema import Diagnosis
from otel_diag.rows import RULES_PROVIDER, ErrorRow, Report, Step


def run_fingerprint(errors: Iterable[ErrorRow]) -> str | None:
    """The set of a run's error shapes as one 16-hex key (order and counts do not matter)."""
    shapes = sorted({e.fingerprint for e in errors if e.fingerprint})
    if not shapes:
        return None
    return hashlib.blake2b("|".join(shapes).encode(), digest_size=8).hexdigest()


def _report(
    run_id: uuid.UUID,
    diagnosis: Diagnosis,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
    *,
    llm_provider: str,
    llm_model: str | None,
    spent: LLMResult | None,
    fallback_reason: str | None = None,
) -> Report:
    return Report(
        id=uuid.uuid4(),
        run_id=run_id,
        root_cause_analysis=diagnosis.root_cause_analysis,
        recommended_actions=tuple(a.as_dict() for a in diagnosis.recommended_actions),
        resume_step=diagnosis.resume_step,
        confidence_score=diagnosis.confidence_score,
        error_category=diagnosis.error_category,
        llm_provider=llm_provider,
        llm_model=llm_model,
        prompt_tokens=spent.prompt_tokens if spent else None,
        completion_tokens=spent.completion_tokens if spent else None,
        latency_ms=round(latency_ms, 3),
        cost_usd=spent.cost_usd if spent else None,
        fingerprint=fingerprint,
        reused_from=None,
        fallback_reason=fallback_reason,
        created_at=now,
    )


def llm_report(
    run_id: uuid.UUID,
    diagnosis: Diagnosis,
    result: LLMResult,
    *,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
    fallback_reason: str | None = None,
) -> Report:
    """The LLM's report; ``fallback_reason`` names a field the rules supplied
    (``unknown_step``: the resume step)."""
    return _report(
        run_id,
        diagnosis,
        fingerprint,
        now,
        latency_ms,
        llm_provider=(result.provider or "litellm")[:64],
        llm_model=result.model[:128],
        spent=result,
        fallback_reason=fallback_reason,
    )


def rules_report(
    run_id: uuid.UUID,
    diagnosis: Diagnosis,
    *,
    reason: str,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
    spent: LLMResult | None = None,
) -> Report:
    return _report(
        run_id,
        diagnosis,
        fingerprint,
        now,
        latency_ms,
        llm_provider=RULES_PROVIDER,
        llm_model=None,
        spent=spent,
        fallback_reason=reason[:64],
    )


def reused_report(
    run_id: uuid.UUID,
    original: Report,
    *,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
) -> Report:
    return replace(
        original,
        id=uuid.uuid4(),
        run_id=run_id,
        prompt_tokens=None,
        completion_tokens=None,
        latency_ms=round(latency_ms, 3),
        cost_usd=0.0,
        fingerprint=fingerprint,
        reused_from=original.reused_from or original.id,
        fallback_reason=None,
        created_at=now,
    )


def link_targets(steps: Sequence[Step], errors: Sequence[ErrorRow]) -> list[tuple[str, str]]:
    """Spans the diagnosis span links to: the run's root, where it failed, where it began."""
    targets = [(s.trace_id, s.span_id) for s in steps if not s.parent_span_id][:1]
    if errors:
        ordered = sorted(errors, key=lambda e: e.created_at)
        for err in (ordered[-1], ordered[0]):
            targets.append((err.trace_id, err.span_id))
    return list(dict.fromkeys(targets))
