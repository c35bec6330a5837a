"""The diagnosis prompt: a failed run's compact context, within a token budget, redacted.

Input is :func:`otel_diag.diagnosis.context.diagnostic_context` (ordered steps with status,
timing and attempts; errors deduplicated by shape with compacted stack traces; tokens and cost).
It is rendered as terse text lines rather than JSON (a third of the tokens for the same
facts) and, when over budget, compacted in stages: uninteresting successful steps are
folded into one summary line (failed steps and their neighbours stay), then messages,
stack traces and the number of error shapes shrink. A 50-step run fits in well under
2,000 tokens. Everything passes through :func:`otel_diag.redact.redact` once more before
it can leave the process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_diag.classify import CATEGORIES
from otel_diag.redact import clean_text, redact

DEFAULT_BUDGET = 1800
"""Prompt tokens (system + user, estimated) a diagnosis may use."""

SYSTEM_PROMPT = (
    "You diagnose failed runs of LLM and agent applications from their OpenTelemetry "
    "traces. Reply with one JSON object and nothing else, with these keys:\n"
    '- "root_cause_analysis": 2-4 sentences: which step failed, how, and the underlying '
    "cause (not just the symptom that propagated to the parent spans).\n"
    '- "error_category": one of ' + ", ".join(CATEGORIES) + ".\n"
    '- "recommended_actions": 1-4 objects {"priority": 1 = do first, "action": what to '
    'change, "rationale": why it fixes the cause}.\n'
    '- "resume_step": the exact name of the step to re-run from once fixed (one of the '
    "step names listed), or null if the run must start over.\n"
    '- "confidence_score": 0 to 1, how sure you are of the root cause.\n'
    "Use only the facts in the trace; never invent step names."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: list[dict[str, str]]
    step_names: list[str]
    estimated_tokens: int
    level: int
    """Compaction stage used (0 = nothing left out)."""


@dataclass(frozen=True, slots=True)
class _Level:
    neighbours: int | None  # None: show every step
    max_steps: int | None  # step lines kept at most (the first, then the latest)
    message_chars: int
    stack_lines: int
    max_errors: int


LEVELS = (
    _Level(None, None, 400, 10, 12),
    _Level(3, 60, 300, 6, 10),
    _Level(2, 40, 200, 4, 8),
    _Level(1, 30, 160, 2, 6),
    _Level(0, 20, 120, 1, 4),
    _Level(0, 12, 90, 0, 3),
)


def estimate_tokens(text: str) -> int:
    """A conservative token estimate: trace text (ids, numbers) runs ~2.4 chars per token."""
    return int(len(text) / 2.2) + 4


def _money(value: Any) -> str:
    return f"${value:.6f}" if isinstance(value, int | float) else "unpriced"


def _step_line(index: int, step: Mapping[str, Any]) -> str:
    parts = [
        f"{index}. {step['name']} [{step['kind']}] {step['status']} a{step['attempt']}",
        f"+{step['start_ms']}ms {step['duration_ms']}ms",
    ]
    if step.get("model"):
        tokens = step.get("tokens") or [0, 0]
        parts.append(f"{step['model']} {tokens[0]}/{tokens[1]}tok {_money(step.get('cost_usd'))}")
    if step.get("error_type"):
        parts.append(str(step["error_type"]))
    return " ".join(parts)


def _fold(hidden: list[Mapping[str, Any]]) -> str:
    counts = Counter(str(s["name"]) for s in hidden)
    names = ", ".join(f"{n} x{c}" for n, c in counts.most_common(3))
    more = "" if len(counts) <= 3 else f", +{len(counts) - 3} more names"
    failed = sum(1 for s in hidden if s["status"] != "ok")
    what = "steps" if failed else "ok steps"
    return f"... {len(hidden)} {what} omitted ({names}{more}) ..."


def _steps_block(steps: Sequence[Mapping[str, Any]], level: _Level) -> list[str]:
    neighbours = level.neighbours
    if neighbours is None or len(steps) <= 8:
        return [_step_line(i + 1, s) for i, s in enumerate(steps)]
    keep = {0, len(steps) - 1}
    for i, step in enumerate(steps):
        if step["status"] != "ok":
            keep.update(range(max(0, i - neighbours), min(len(steps), i + neighbours + 1)))
    if level.max_steps is not None and len(keep) > level.max_steps:
        ordered = sorted(keep)
        first_failed = next((i for i in ordered if steps[i]["status"] != "ok"), ordered[0])
        keep = {0, first_failed, *ordered[-(level.max_steps - 2) :]}
    lines: list[str] = []
    hidden: list[Mapping[str, Any]] = []
    for i, step in enumerate(steps):
        if i in keep:
            if hidden:
                lines.append(_fold(hidden))
                hidden = []
            lines.append(_step_line(i + 1, step))
        else:
            hidden.append(step)
    if hidden:
        lines.append(_fold(hidden))
    return lines


def _errors_block(errors: Sequence[Mapping[str, Any]], level: _Level) -> list[str]:
    lines: list[str] = []
    for n, err in enumerate(errors[: level.max_errors], start=1):
        head = (
            f'E{n} step "{err["step"]}" {err["source"]}/{err["category"]} {err["type"]}, '
            f"attempt {err['attempt']}"
        )
        if err.get("occurrences", 1) > 1:
            head += f" ({err['occurrences']} occurrences)"
        seen = err.get("seen_on") or []
        if seen:
            also = ", ".join(dict.fromkeys(str(s) for s in seen))
            head += f"; propagated to: {clean_text(also, 160)}"
        lines.append(head)
        lines.append("  message: " + clean_text(err["message"], level.message_chars))
        stack = err.get("stack")
        if stack and level.stack_lines:
            frames = str(stack).splitlines()[-level.stack_lines :]
            lines.append("  stack: " + " | ".join(clean_text(f, 160) for f in frames))
    if len(errors) > level.max_errors:
        lines.append(f"(+{len(errors) - level.max_errors} more error shapes omitted)")
    return lines


def _render(context: Mapping[str, Any], level: _Level) -> str:
    run = context["run"]
    tokens = run.get("tokens") or [0, 0]
    steps = context["steps"]
    lines = [
        f'Run "{run.get("name") or run["id"]}" (service {run.get("service") or "unknown"}), '
        f"status {run['status']}.",
        f"Totals: {len(steps)} steps, {run['llm_calls']} LLM calls, {run['tool_calls']} tool "
        f"calls, tokens in/out {tokens[0]}/{tokens[1]}, cost {_money(run.get('cost_usd'))}, "
        f"{run['error_count']} errors.",
        "",
        "Errors, first occurrence of each shape, oldest first:",
        *_errors_block(context["errors"], level),
        "",
        "Steps in start order (#. name [kind] status attempt, start offset, duration, "
        "model tokens cost, error type):",
        *_steps_block(steps, level),
        "",
        "resume_step must be one of the step names listed, or null.",
    ]
    return "\n".join(lines)


def build_prompt(
    context: Mapping[str, Any],
    budget: int = DEFAULT_BUDGET,
    count_tokens: Callable[[str], int] = estimate_tokens,
) -> Prompt:
    """Messages for the diagnosis LLM, compacted until ``count_tokens`` fits ``budget``.

    ``count_tokens`` defaults to a conservative estimate; the service passes the model's
    tokenizer (through litellm) when it is about to call the model anyway.
    """
    step_names = list(dict.fromkeys(str(s["name"]) for s in context["steps"]))
    system_tokens = count_tokens(SYSTEM_PROMPT)
    user = ""
    used = 0
    chosen = 0
    for chosen, level in enumerate(LEVELS):  # noqa: B007 - the last level is the fallback
        user = redact(_render(context, level))
        used = system_tokens + count_tokens(user)
        if used <= budget:
            break
    else:
        room = max(0, int((budget - system_tokens - 8) * 2.2))
        user = user[:room] + "\n(truncated)"
        used = system_tokens + count_tokens(user)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]
    return Prompt(messages, step_names, used, chosen)
