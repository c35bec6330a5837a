"""``run()`` and ``step()``: the run a trace belongs to, and the steps of workflows.

``run(name)`` opens the root span ``invoke_workflow {name}`` and puts ``otel_diag.run.id``
(and ``otel_diag.tenant.id``) into W3C baggage. Baggage is what crosses process boundaries:
the standard propagators send it with every instrumented HTTP call, and
:class:`RunBaggageSpanProcessor`, installed on each service's tracer provider (by
``configure()`` and, under ``opentelemetry-instrument``, by our post-instrument hook,
whichever configurator set the SDK up), copies the two values onto every span started under
it. So every span of the run, here or in a service it calls, names its run, and the exporter
or receiver files it under the right ``runs`` row.

``step(name, attempt=1)`` is a workflow/activity step: a span with ``otel_diag.step.name``
and ``otel_diag.step.attempt``. Both are context managers for ``with`` and ``async with``;
an exception is recorded and leaves unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.trace import Span, set_span_in_context

from otel_diag import semconv as sc
from otel_diag.config import load_instrumentation_settings
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.errors import record_error
from otel_diag.tenants import validate_tenant_id

_PROPAGATED = (sc.RUN_ID, sc.TENANT_ID)


# Set (as a context value, which never leaves the process) by run(): baggage under it was
# chosen here, not by a remote caller.
_LOCAL_RUN = otel_context.create_key("otel_diag.local_run")


class RunBaggageSpanProcessor(SpanProcessor):
    """Copies ``otel_diag.run.id`` / ``otel_diag.tenant.id`` from baggage onto each new span.

    Attributes the span already has win. Cheap on spans outside a run: one context lookup.
    With ``trust_remote_tenant=False`` (``OTEL_DIAG_TRUST_BAGGAGE_TENANT=false``, for a
    service exposed to callers it does not trust) a tenant that arrived in a caller's
    baggage is ignored: only a ``run()`` in this process may choose the tenant.
    """

    def __init__(self, trust_remote_tenant: bool | None = None) -> None:
        if trust_remote_tenant is None:
            trust_remote_tenant = load_instrumentation_settings().trust_baggage_tenant
        self.trust_remote_tenant = trust_remote_tenant

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        try:
            entries = baggage.get_all(parent_context)
            if not entries:
                return
            attrs = span.attributes or {}
            for key in _PROPAGATED:
                value = entries.get(key)
                if value is None or key in attrs:
                    continue
                remote_tenant = key == sc.TENANT_ID and not otel_context.get_value(
                    _LOCAL_RUN, parent_context
                )
                if remote_tenant and not self.trust_remote_tenant:
                    continue
                span.set_attribute(key, str(value))
        except Exception:
            tracing.internal_error("copying run baggage")

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span_processors(provider: TracerProvider) -> Iterator[SpanProcessor]:
    """The provider's span processors (SDK internals; nothing if they cannot be read)."""
    multi = getattr(provider, "_active_span_processor", None)
    yield from getattr(multi, "_span_processors", ())


def add_run_baggage_processor(provider: TracerProvider) -> None:
    """Install :class:`RunBaggageSpanProcessor` on ``provider`` unless it is there already.

    The one place it is installed: ``configure()`` and the ``opentelemetry-instrument`` hook
    both call this, so a process that does both gets it once.
    """
    if not any(isinstance(p, RunBaggageSpanProcessor) for p in span_processors(provider)):
        provider.add_span_processor(RunBaggageSpanProcessor())


class _SpanScope:
    """Shared ``with`` / ``async with`` lifecycle: start and attach, record, detach and end."""

    _step_kind = "activity"

    def __init__(self) -> None:
        self.span: Span | None = None
        self._token: object | None = None

    def _context(self) -> Context:
        return otel_context.get_current()

    def __enter__(self) -> Any:
        try:
            ctx = self._context()
            span = self._start_in(ctx)
            self.span = span
            self._token = otel_context.attach(set_span_in_context(span, ctx))
        except Exception:
            tracing.internal_error("starting a span")
        return self

    def _start_in(self, ctx: Context) -> Span:
        raise RuntimeError("subclasses start their span")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span, token = self.span, self._token
        self._token = None
        if span is None:
            return None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        try:
            if isinstance(exc, Exception):
                record_error(span, exc, step_kind=self._step_kind)
        except Exception:
            tracing.internal_error("recording an error")
        finally:
            span.end()
        return None

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return self.__exit__(exc_type, exc, tb)


class RunContext(_SpanScope):
    """A running workflow: ``run_id``, ``tenant_id``, ``name`` and its root ``span``."""

    def __init__(self, name: str, run_id: str | None, tenant_id: str | None) -> None:
        super().__init__()
        self.name = name
        self.run_id = str(run_id) if run_id is not None else str(uuid.uuid4())
        self.tenant_id = validate_tenant_id(tenant_id) if tenant_id is not None else None

    @property
    def trace_id(self) -> str | None:
        """The root span's trace id (32 hex chars) once entered."""
        if self.span is None:
            return None
        return f"{self.span.get_span_context().trace_id:032x}"

    def _context(self) -> Context:
        ctx = baggage.set_baggage(sc.RUN_ID, self.run_id)
        if self.tenant_id is not None:
            ctx = baggage.set_baggage(sc.TENANT_ID, self.tenant_id, context=ctx)
            ctx = otel_context.set_value(_LOCAL_RUN, True, ctx)
        return ctx

    def _start_in(self, ctx: Context) -> Span:
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_WORKFLOW,
            sc.RUN_ID: self.run_id,
            sc.RUN_NAME: self.name,
        }
        if self.tenant_id is not None:
            attributes[sc.TENANT_ID] = self.tenant_id
        return tracing.get_tracer().start_span(
            f"{sc.OP_INVOKE_WORKFLOW} {self.name}", context=ctx, attributes=attributes
        )

    def __enter__(self) -> RunContext:
        super().__enter__()
        return self

    async def __aenter__(self) -> RunContext:
        return self.__enter__()


class StepContext(_SpanScope):
    """One workflow/activity step: ``name`` and ``attempt``, and its ``span``."""

    def __init__(self, name: str, attempt: int) -> None:
        super().__init__()
        self.name = name
        self.attempt = attempt

    def _start_in(self, ctx: Context) -> Span:
        return tracing.get_tracer().start_span(
            self.name,
            context=ctx,
            attributes={sc.STEP_NAME: self.name, sc.STEP_ATTEMPT: self.attempt},
        )

    def __enter__(self) -> StepContext:
        super().__enter__()
        return self

    async def __aenter__(self) -> StepContext:
        return self.__enter__()


def run(name: str, run_id: str | None = None, tenant_id: str | None = None) -> RunContext:
    """A run: the root span of one workflow execution, its id carried in baggage.

    ``run_id`` defaults to a new UUID; pass the same id to the runs of one workflow retried
    in several traces to group them. ``tenant_id`` (validated) selects the tenant's store.
    """
    return RunContext(name, run_id, tenant_id)


def step(name: str, attempt: int = 1) -> StepContext:
    """A workflow or activity step named ``name``; ``attempt`` counts its retries from 1."""
    return StepContext(name, max(1, int(attempt)))
