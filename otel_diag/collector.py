"""``ErrorCollector``: the seed spec's API over the store.

Emit side: ``log_error``, ``log_exception``, ``log_llm_error``, ``log_tool_error`` and
``collect_error`` record an error on the current span (see
:mod:`otel_diag.instrumentation.errors`); the exporter turns it into an ``error_logs`` row.

Read side (this module): ``get_errors_for_run`` and ``build_diagnostic_context``, the
compact view of a failed run that the diagnosis puts in front of an LLM. The context is
small on purpose: ordered steps with status, timing and attempts; errors deduplicated by
shape with compacted, redacted stack traces; totals for tokens and cost.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from otel_diag.instrumentation import errors as emit
from otel_diag.redact import safe_text
from otel_diag.store import queries
from otel_diag.store.engine import TenantDBManager, get_tenant_manager

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


class ErrorCollector:
    """Errors of runs, for one tenant (default tenant unless given)."""

    def __init__(
        self,
        tenant_id: str | None = None,
        *,
        manager: TenantDBManager | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self._manager = manager
        self._engine = engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            manager = self._manager or get_tenant_manager()
            self._engine = manager.get_engine(self.tenant_id)
        return self._engine

    def _run_id(self, conn: Any, run_id: str | uuid.UUID) -> uuid.UUID | None:
        return queries.resolve_run(conn, run_id)

    def get_errors_for_run(self, run_id: str | uuid.UUID) -> list[dict[str, Any]]:
        """Every error row of the run, oldest first (empty if the run is unknown)."""
        with self.engine.connect() as conn:
            rid = self._run_id(conn, run_id)
            return queries.get_errors(conn, rid) if rid else []

    def build_diagnostic_context(self, run_id: str | uuid.UUID) -> dict[str, Any] | None:
        """The run, its ordered steps, its errors, cost and tokens, compactly; None if unknown."""
        with self.engine.connect() as conn:
            rid = self._run_id(conn, run_id)
            if rid is None:
                return None
            run = queries.get_run(conn, rid)
            steps = queries.get_steps(conn, rid)
            errors = queries.get_errors(conn, rid)
        assert run is not None
        return diagnostic_context(run, steps, errors)

    # --- emit side: record errors on the current span ---------------------------------
    def log_error(
        self, source: emit.LogSource | str, error: BaseException | str, **kwargs: Any
    ) -> emit.ErrorInfo:
        """Record an error from ``source`` (see :func:`~otel_diag.instrumentation.log_error`)."""
        kwargs.setdefault("tenant_id", self.tenant_id)
        return emit.log_error(source, error, **kwargs)

    def log_exception(self, exc: BaseException, **kwargs: Any) -> emit.ErrorInfo:
        """Record a caught exception; source and category inferred unless given."""
        kwargs.setdefault("tenant_id", self.tenant_id)
        return emit.log_exception(exc, **kwargs)

    def log_llm_error(self, exc: BaseException | str, **kwargs: Any) -> emit.ErrorInfo:
        """Record a failed LLM call (``model=``, ``provider=`` if known)."""
        kwargs.setdefault("tenant_id", self.tenant_id)
        return emit.log_llm_error(exc, **kwargs)

    def log_tool_error(self, exc: BaseException | str, **kwargs: Any) -> emit.ErrorInfo:
        """Record a failed tool call (``tool_name=`` if known)."""
        kwargs.setdefault("tenant_id", self.tenant_id)
        return emit.log_tool_error(exc, **kwargs)

    def collect_error(
        self, activity: str, exc: BaseException | str, **kwargs: Any
    ) -> emit.ErrorInfo:
        """Record the failure of a worker activity (``attempt=`` counts from 1)."""
        kwargs.setdefault("tenant_id", self.tenant_id)
        return emit.collect_error(activity, exc, **kwargs)


def diagnostic_context(
    run: dict[str, Any], steps: list[dict[str, Any]], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """Pure: rows -> the compact context (separate so it is testable without a database)."""
    t0 = steps[0]["started_at"] if steps else run["started_at"]
    base = datetime.fromisoformat(t0)

    def offset_ms(ts: str) -> int:
        return int((datetime.fromisoformat(ts) - base).total_seconds() * 1000)

    step_view = []
    for s in steps:
        item: dict[str, Any] = {
            "name": s["step_name"],
            "kind": s["kind"],
            "status": s["status"],
            "attempt": s["attempt"],
            "start_ms": offset_ms(s["started_at"]),
            "duration_ms": round(s["duration_ms"], 1),
        }
        if s["model"]:
            item["model"] = s["model"]
            item["tokens"] = [s["input_tokens"] or 0, s["output_tokens"] or 0]
            if s["cost_usd"] is not None:
                item["cost_usd"] = round(s["cost_usd"], 6)
        if s["error_type"]:
            item["error_type"] = s["error_type"]
        step_view.append(item)

    shapes: dict[tuple[str, str], dict[str, Any]] = {}
    for e in errors:
        key = (e["error_type"], e["error_message"][:200])
        seen = shapes.get(key)
        if seen is not None:
            seen["occurrences"] += 1
            if e["step_name"] != seen["step"]:
                seen["seen_on"].append(e["step_name"])
            seen["seen_on"].extend(e.get("propagated_to") or ())
            continue
        shapes[key] = {
            "step": e["step_name"],
            "source": e["source"],
            "category": e["error_category"],
            "type": e["error_type"],
            "message": safe_text(e["error_message"], MESSAGE_CHARS),
            "attempt": e["attempt"],
            "stack": compact_stack(e["stack_trace"]),
            "fingerprint": e["fingerprint"],
            "occurrences": 1,
            "seen_on": list(e.get("propagated_to") or ()),
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
            "id": run["id"],
            "name": run["name"],
            "status": run["status"],
            "service": run["service_name"],
            "started_at": run["started_at"],
            "ended_at": run["ended_at"],
            "llm_calls": run["llm_calls"],
            "tool_calls": run["tool_calls"],
            "tokens": [run["input_tokens"], run["output_tokens"]],
            "cost_usd": round(run["cost_usd"], 6) if run["cost_usd"] is not None else None,
            "unpriced_tokens": run["unpriced_tokens"],
            "error_count": run["error_count"],
            "trace_id": run["trace_id"],
        },
        "steps": step_view,
        "errors": error_view,
    }
