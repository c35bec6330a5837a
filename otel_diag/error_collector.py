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
    from otel_diag.rows import ErrorRow
    from otel_diag.store.port import Storage, TenantStore


class ErrorCollector:
    """Errors of runs, for one tenant (default tenant unless given)."""

    def __init__(self, tenant_id: str | None = None, *, manager: Storage | None = None) -> None:
        self.tenant_id = tenant_id
        self._manager = manager

    # --- read side: rows of the store ---------------------------------------------------
    @property
    def store(self) -> TenantStore:
        """The tenant's store (opened on first use, on the configured database)."""
        if self._manager is None:
            from otel_diag.config import load_settings
            from otel_diag.store import open_storage

            self._manager = open_storage(load_settings())
        return self._manager.tenant(self.tenant_id)

    def get_errors_for_run(self, run_id: str | uuid.UUID) -> list[ErrorRow]:
        """Every failure of the run, oldest first (empty if the run is unknown)."""
        store = self.store
        rid = store.resolve_run(run_id)
        return store.errors(rid) if rid else []

    def build_diagnostic_context(self, run_id: str | uuid.UUID) -> dict[str, Any] | None:
        """The run, its ordered steps, its errors, cost and tokens, compactly; None if unknown."""
        from otel_diag.diagnosis.context import diagnostic_context

        store = self.store
        rid = store.resolve_run(run_id)
        run = store.run(rid) if rid else None
        if rid is None or run is None:
            return None
        return diagnostic_context(run, store.steps(rid), store.errors(rid))

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
