"""``ErrorCollector``: the seed spec's error API, one object for both directions.

Emit side: ``log_error``, ``log_exception``, ``log_llm_error``, ``log_tool_error`` and
``collect_error`` record an error on the current span (delegating to
:mod:`otel_diag.instrumentation.errors`); the exporter or the receiver turns it into an
``error_logs`` row. Emitting loads no database code: an app that only records errors never
imports SQLAlchemy.

Read side: ``get_errors_for_run`` reads a run's rows from the store and
``build_diagnostic_context`` builds the compact view the diagnosis puts in front of an LLM
(:func:`otel_diag.diagnosis.context.diagnostic_context`). Both import the store when called.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from otel_diag.instrumentation import errors as emit

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from otel_diag.store.sql.engine import TenantDBManager


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

    # --- read side: rows of the store ---------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The tenant's database engine (opened on first use)."""
        if self._engine is None:
            from otel_diag.store.sql.engine import get_tenant_manager

            manager = self._manager or get_tenant_manager()
            self._engine = manager.get_engine(self.tenant_id)
        return self._engine

    def get_errors_for_run(self, run_id: str | uuid.UUID) -> list[dict[str, Any]]:
        """Every error row of the run, oldest first (empty if the run is unknown)."""
        from otel_diag.store.sql import queries

        with self.engine.connect() as conn:
            rid = queries.resolve_run(conn, run_id)
            return queries.get_errors(conn, rid) if rid else []

    def build_diagnostic_context(self, run_id: str | uuid.UUID) -> dict[str, Any] | None:
        """The run, its ordered steps, its errors, cost and tokens, compactly; None if unknown."""
        from otel_diag.diagnosis.context import diagnostic_context
        from otel_diag.store.sql import queries

        with self.engine.connect() as conn:
            rid = queries.resolve_run(conn, run_id)
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
