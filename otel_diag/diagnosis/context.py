"""The compact view of a failed run that the diagnosis puts in front of an LLM.

Small on purpose: ordered steps with status, timing and attempts; errors deduplicated by
shape with compacted, redacted stack traces; totals for tokens and cost. Pure functions over
stored rows, so it is testable without a database; :class:`~otel_diag.diagnosis.service.
DiagnosticsService`, the CLI and :class:`~otel_diag.error_collector.ErrorCollector` read the
rows and call :func:`diagnostic_context`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from otel_diag.redact import safe_text
from otel_diag.rows import ErrorRow, Run, Step

MESSAGE_CHARS = 400
STACK_LINES = 10
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$')


def compact_stack(stack: str | None, max_lines: int = STACK_LINES) -> str | None:
    """The frames that matter: application frames first, the exception line last."""
    if not stack:
        return None
    lines = [ln.rstrip() for ln in stack.strip().splitlines() if ln.strip()]
    frames: list[str] = []
    for ln in lines:
        m = _FRAME.match(ln)
        if m:
            path, lineno, func = m.groups()
            if "site-packages" in path or path.startswith("<frozen"):
                continue
            frames.append(f"{path.rsplit('/', 1)[-1]}:{lineno} in {func}")
    tail = lines[-1] if lines else ""
    kept = frames[-(max_lines - 1) :] if frames else []
    return safe_text("\n".join([*kept, tail]), 2000)


def diagnostic_context(
    run: Run, steps: Sequence[Step], errors: Sequence[ErrorRow]
) -> dict[str, Any]:
    """Pure: rows -> the compact context (separate so it is testable without a database)."""
    base = steps[0].started_at if steps else run.started_at

    def offset_ms(ts: datetime) -> int:
        return int((ts - base).total_seconds() * 1000)

    step_view = []
    for s in steps:
        item: dict[str, Any] = {
            "name": s.step_name,
            "kind": s.kind,
            "status": s.status,
            "attempt": s.attempt,
            "start_ms": offset_ms(s.started_at),
            "duration_ms": round(s.duration_ms, 1),
        }
        if s.model:
            item["model"] = s.model
            item["tokens"] = [s.input_tokens or 0, s.output_tokens or 0]
            if s.cost_usd is not None:
                item["cost_usd"] = round(s.cost_usd, 6)
        if s.error_type:
            item["error_type"] = s.error_type
        step_view.append(item)

    shapes: dict[tuple[str, str], dict[str, Any]] = {}
    for e in errors:
        key = (e.error_type, e.error_message[:200])
        seen = shapes.get(key)
        if seen is not None:
            seen["occurrences"] += 1
            if e.step_name != seen["step"]:
                seen["seen_on"].append(e.step_name)
            seen["seen_on"].extend(e.propagated_to or ())
            continue
        shapes[key] = {
            "step": e.step_name,
            "source": e.source,
            "category": e.error_category,
            "type": e.error_type,
            "message": safe_text(e.error_message, MESSAGE_CHARS),
            "attempt": e.attempt,
            "stack": compact_stack(e.stack_trace),
            "fingerprint": e.fingerprint,
            "occurrences": 1,
            "seen_on": list(e.propagated_to or ()),
        }
    error_view = list(shapes.values())
    for item in error_view:
        item["seen_on"] = list(dict.fromkeys(item["seen_on"]))
        if not item["seen_on"]:
            del item["seen_on"]
        if item["stack"] is None:
            del item["stack"]
    return {
        "run": {
            "id": str(run.id),
            "name": run.name,
            "status": run.status,
            "service": run.service_name,
            "started_at": run.started_at.isoformat(),
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
            "llm_calls": run.llm_calls,
            "tool_calls": run.tool_calls,
            "tokens": [run.input_tokens, run.output_tokens],
            "cost_usd": round(run.cost_usd, 6) if run.cost_usd is not None else None,
            "unpriced_tokens": run.unpriced_tokens,
            "error_count": run.error_count,
            "trace_id": run.trace_id,
        },
        "steps": step_view,
        "errors": error_view,
    }
