"""``diagnostic_reports`` rows: from an LLM answer, from the rules, or reused.

Pure functions, so what a report holds in each case is written down in one place:

- LLM: provider/model from litellm, tokens, latency and cost of the request.
- rules: ``llm_provider='rules'``, ``fallback_reason`` saying why (``mode_rules``,
  ``spend_cap``, ``timeout``, ``rate_limited``, ``invalid_json``, ``unknown_step``, ...).
  If an LLM request was made and failed, its tokens and cost stay on the report: that money
  was spent, and the spend cap must count it.
- reused: a copy of a recent LLM report for the same error fingerprints, ``reused_from``
  pointing at the original, no tokens, no cost.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from otel_diag.diagnosis.llm import LLMResult
from otel_diag.diagnosis.schema import Diagnosis

RULES_PROVIDER = "rules"


def run_fingerprint(errors: Iterable[Mapping[str, Any]]) -> str | None:
    """The set of a run's error shapes as one 16-hex key (order and counts do not matter)."""
    shapes = sorted({str(e["fingerprint"]) for e in errors if e.get("fingerprint")})
    if not shapes:
        return None
    return hashlib.blake2b("|".join(shapes).encode(), digest_size=8).hexdigest()


def _base(
    run_id: uuid.UUID | str,
    diagnosis: Diagnosis,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "run_id": run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id)),
        "root_cause_analysis": diagnosis.root_cause_analysis,
        "recommended_actions": [a.as_dict() for a in diagnosis.recommended_actions],
        "resume_step": diagnosis.resume_step,
        "confidence_score": diagnosis.confidence_score,
        "error_category": diagnosis.error_category,
        "fingerprint": fingerprint,
        "latency_ms": round(latency_ms, 3),
        "created_at": now,
        "reused_from": None,
        "fallback_reason": None,
    }


def llm_row(
    run_id: uuid.UUID | str,
    diagnosis: Diagnosis,
    result: LLMResult,
    *,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
) -> dict[str, Any]:
    row = _base(run_id, diagnosis, fingerprint, now, latency_ms)
    row.update(
        llm_provider=(result.provider or "litellm")[:64],
        llm_model=result.model[:128],
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=result.cost_usd,
    )
    return row


def rules_row(
    run_id: uuid.UUID | str,
    diagnosis: Diagnosis,
    *,
    reason: str,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
    spent: LLMResult | None = None,
) -> dict[str, Any]:
    row = _base(run_id, diagnosis, fingerprint, now, latency_ms)
    row.update(
        llm_provider=RULES_PROVIDER,
        llm_model=None,
        prompt_tokens=spent.prompt_tokens if spent else None,
        completion_tokens=spent.completion_tokens if spent else None,
        cost_usd=spent.cost_usd if spent else None,
        fallback_reason=reason[:64],
    )
    return row


def reused_row(
    run_id: uuid.UUID | str,
    original: Mapping[str, Any],
    *,
    fingerprint: str | None,
    now: datetime,
    latency_ms: float,
) -> dict[str, Any]:
    source = original.get("reused_from") or original["id"]
    return {
        "id": uuid.uuid4(),
        "run_id": run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id)),
        "root_cause_analysis": original["root_cause_analysis"],
        "recommended_actions": list(original["recommended_actions"]),
        "resume_step": original["resume_step"],
        "confidence_score": original["confidence_score"],
        "error_category": original.get("error_category"),
        "llm_provider": original["llm_provider"],
        "llm_model": original.get("llm_model"),
        "prompt_tokens": None,
        "completion_tokens": None,
        "latency_ms": round(latency_ms, 3),
        "cost_usd": 0.0,
        "fingerprint": fingerprint,
        "reused_from": source if isinstance(source, uuid.UUID) else uuid.UUID(str(source)),
        "fallback_reason": None,
        "created_at": now,
    }


def link_targets(
    steps: Sequence[Mapping[str, Any]], errors: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """Spans the diagnosis span links to: the run's root, where it failed, where it began."""
    targets = [
        (str(s["trace_id"]), str(s["span_id"])) for s in steps if not s.get("parent_span_id")
    ][:1]
    if errors:
        ordered = sorted(errors, key=lambda e: str(e["created_at"]))
        for err in (ordered[-1], ordered[0]):
            targets.append((str(err["trace_id"]), str(err["span_id"])))
    return list(dict.fromkeys(targets))
