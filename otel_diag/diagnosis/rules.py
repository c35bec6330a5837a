"""Rule-based diagnosis: the fallback when there is no LLM, or the LLM fails.

It reads a run's rows the way an on-call engineer reads a trace:

1. Ignore errors that were *recovered* (the step, or an enclosing step, was retried
   later and succeeded).
2. Take the error that ended the run and follow its exception back down the span tree to
   where it was first raised (a propagated exception is recorded again on every parent).
3. If that origin is a generic wrapper (an agent or activity step, or an uncategorized
   error), look at the unrecovered errors raised beneath it just before: the wrapped cause.
4. Map the cause's category (rate limit / quota, timeout, auth / permission, context length,
   invalid request, tool raised, tool argument validation, output validation / parse,
   storage, dependency unreachable, internal) to a root cause and actions, noting when the
   step's retries were exhausted.
5. Pick the step to resume from: the failed step, or the enclosing declared step
   (``step()`` activity) of a failed LLM / tool call; for bad LLM output or bad tool
   arguments, the LLM call that produced them.

Confidence is what the rules measured, not a guess: :data:`CONFIDENCE` is, per category
the rules state, the fraction of the labelled scenarios (``tests/diagnosis/scenarios``,
``python -m tests.bench diagnosis`` prints the tables) where they stating that category
named both the right category and the right resume step, rounded to 0.05 and never above
0.9 (a few dozen scenarios do not make anything certain). A test holds every category's
mean stated confidence within 0.1 of its measured accuracy, so adding a scenario the rules
get wrong lowers the table, not just the accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otel_diag.diagnosis.rule_texts import analysis_text, recommended_actions
from otel_diag.diagnosis.schema import Diagnosis, round_confidence
from otel_diag.rows import ErrorRow, Run, Step

GENERIC = frozenset({"internal", "tool_error"})
LEAF_KINDS = frozenset({"llm", "tool"})
MAX_CONFIDENCE = 0.9
CONFIDENCE: dict[str, float] = {
    # measured 2026-12-02 on 46 scenarios: right / stated (see the module docstring)
    "rate_limit": 0.9,  # 3/3
    "context_length": 0.9,  # 4/4
    "auth": 0.9,  # 4/4
    "dependency": 0.9,  # 7/7
    "invalid_request": 0.9,  # 2/2
    "output_parse": 0.9,  # 6/6
    "validation": 0.9,  # 3/3
    "tool_error": 0.9,  # 2/2
    "timeout": 0.75,  # 3/4: "iteration limit or time limit" is an agent loop
    "storage": 0.5,  # 2/4: a rejected password, SQL the LLM wrote, both raise OperationalError
    "internal": 0.3,  # 2/7: an unrecognised exception is often something else in disguise
}
"""Stated confidence per category: the rules' measured accuracy when they state it."""
INFERRED_PENALTY = 0.1
"""Less when the failed step had to be inferred (the error sat on a span that is no step;
no labelled scenario has one, so this is the one unmeasured adjustment)."""


@dataclass(slots=True)
class _Step:
    name: str
    kind: str
    status: str
    attempt: int
    span_id: str
    parent: str | None
    start: datetime
    ancestors: list[_Step] = field(default_factory=list)


@dataclass(slots=True)
class _Error:
    row: ErrorRow
    step: _Step | None
    time: datetime
    depth: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.row.error_type, self.row.error_message[:500])

    @property
    def category(self) -> str:
        return self.row.error_category


def _build_steps(rows: Sequence[Step]) -> dict[str, _Step]:
    by_span = {
        r.span_id: _Step(
            name=r.step_name,
            kind=r.kind,
            status=r.status,
            attempt=r.attempt or 1,
            span_id=r.span_id,
            parent=r.parent_span_id,
            start=r.started_at,
        )
        for r in rows
    }
    for step in by_span.values():
        parent = by_span.get(step.parent) if step.parent else None
        seen = {step.span_id}
        while parent is not None and parent.span_id not in seen:
            step.ancestors.append(parent)
            seen.add(parent.span_id)
            parent = by_span.get(parent.parent) if parent.parent else None
    return by_span


def _recovered(step: _Step | None, steps: Sequence[_Step]) -> bool:
    """The step, or an enclosing one, ran again later under the same name and succeeded."""
    if step is None:
        return False
    for candidate in (step, *step.ancestors):
        if any(
            s.name == candidate.name and s.start > candidate.start and s.status == "ok"
            for s in steps
        ):
            return True
    return False


def _beneath(inner: _Error, outer: _Error) -> bool:
    if inner.step is None or outer.step is None:
        return True  # a span that is not a step (the run's root, an HTTP call): unknown
    return outer.step in inner.step.ancestors


def _chain_origin(err: _Error, errors: Sequence[_Error]) -> _Error:
    """Where the exception ``err`` was first raised (same type and message, earliest)."""
    chain = [e for e in errors if e.key == err.key and e.time <= err.time and _beneath(e, err)] or [
        err
    ]
    return min(chain, key=lambda e: (e.time, -e.depth))


def _find_cause(errors: list[_Error], steps: Sequence[_Step]) -> tuple[_Error, list[_Error]]:
    live = [e for e in errors if not _recovered(e.step, steps)] or errors
    fatal = max(live, key=lambda e: (e.time, -e.depth))
    cause = _chain_origin(fatal, live)
    for _ in range(4):
        wrapper = (
            cause.category in GENERIC or cause.step is None or cause.step.kind not in LEAF_KINDS
        )
        if not wrapper:
            break
        inner = [
            e for e in live if e.time < cause.time and e.key != cause.key and _beneath(e, cause)
        ]
        if not inner:
            break
        candidate = _chain_origin(max(inner, key=lambda e: (e.time, -e.depth)), live)
        if cause.category not in GENERIC and candidate.category in GENERIC:
            break  # a specific wrapper says more than a generic inner error
        cause = candidate
    return cause, live


def _failed_step(cause: _Error, steps: Sequence[_Step]) -> tuple[_Step | None, bool]:
    """The step that failed; for an error on a non-step span, the latest failed step before it."""
    if cause.step is not None:
        return cause.step, False
    failed = [s for s in steps if s.status != "ok" and s.start <= cause.time]
    if failed:
        return max(failed, key=lambda s: (s.start, len(s.ancestors))), True
    return None, True


def _unit(step: _Step) -> str:
    """The resumable unit of a step: an LLM or tool call resumes with its declared step."""
    if step.kind in LEAF_KINDS:
        for ancestor in step.ancestors:
            if ancestor.kind == "activity" and ancestor.parent is not None:
                return ancestor.name
    return step.name


def _effective_category(cause: _Error, failed: _Step | None, steps: Sequence[_Step]) -> str:
    category = cause.category
    outside_tool = failed is None or failed.kind != "tool"
    # A validation error outside a tool, after an LLM answered: the output was invalid.
    if (
        category == "validation"
        and outside_tool
        and any(s.kind == "llm" and s.start <= cause.time for s in steps)
    ):
        return "output_parse"
    return category


def _producer(cause: _Error, failed: _Step, steps: Sequence[_Step]) -> _Step | None:
    """The LLM call whose output (an answer, tool arguments) the failed step consumed."""
    if failed.kind == "llm":
        return failed
    before = [s for s in steps if s.kind == "llm" and s.start <= cause.time and s is not failed]
    return max(before, key=lambda s: s.start) if before else None


def _attempts(failed: _Step, unit: str, steps: Sequence[_Step]) -> int:
    same = [s for s in steps if s.name in (failed.name, unit) and s.status != "ok"]
    by_name = max(
        (sum(1 for s in same if s.name == name) for name in (failed.name, unit)), default=1
    )
    return max(by_name, *(s.attempt for s in same), 1)


def diagnose_by_rules(
    run: Run, step_rows: Sequence[Step], error_rows: Sequence[ErrorRow]
) -> Diagnosis:
    """A diagnosis from the run's stored rows alone (no network, a few milliseconds)."""
    by_span = _build_steps(step_rows)
    steps = sorted(by_span.values(), key=lambda s: (s.start, len(s.ancestors)))
    if not error_rows:
        return Diagnosis(
            f"Run {run.name or run.id} has no recorded errors to diagnose.",
            recommended_actions("internal", None, {}),
            None,
            0.1,
            None,
            {"rule": "no_errors"},
        )
    errors = [
        _Error(
            row,
            by_span.get(row.span_id),
            row.created_at,
            len(by_span[row.span_id].ancestors) if row.span_id in by_span else -1,
        )
        for row in error_rows
    ]
    cause, live = _find_cause(errors, steps)
    failed, inferred = _failed_step(cause, steps)
    category = _effective_category(cause, failed, steps)
    resume: str | None = None
    facts: dict[str, Any] = {
        "category": category,
        "error_type": cause.row.error_type,
        "message": cause.row.error_message,
        "step": failed.name if failed else (cause.row.step_name or ""),
        "kind": failed.kind if failed else "span",
        "model": cause.row.model,
    }
    if failed is not None:
        resume = _unit(failed)
        if category == "output_parse" or (category == "validation" and failed.kind == "tool"):
            producer = _producer(cause, failed, steps)
            if producer is not None:
                resume = _unit(producer)
                facts["producer"] = producer.name
        attempts = _attempts(failed, resume, steps)
        facts["attempts"] = attempts
        facts["retries_exhausted"] = attempts >= 2
    facts["resume_step"] = resume
    # Stored rows say where the exception propagated; copies that could not be folded
    # (a chain through spans the store never saw) add their own step names.
    facts["propagated_to"] = list(
        dict.fromkeys(
            [
                *(cause.row.propagated_to or ()),
                *sorted(
                    str(e.row.step_name)
                    for e in errors
                    if e.key == cause.key and e is not cause and e.row.step_name != facts["step"]
                ),
            ]
        )
    )
    others = {e.key for e in live if e.key != cause.key and not _beneath(e, cause)}
    facts["other_errors"] = len(others)
    confidence = CONFIDENCE.get(category, CONFIDENCE["internal"])
    if inferred:
        confidence -= INFERRED_PENALTY
    confidence = max(0.1, min(MAX_CONFIDENCE, confidence))
    return Diagnosis(
        analysis_text(facts),
        recommended_actions(category, resume, facts),
        resume,
        round_confidence(confidence),
        category,
        {"rule": category, **facts},
    )
