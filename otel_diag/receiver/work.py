"""The work of one ingest request, in one call: inflate, decode, project and write.

Kept apart from the transports and from admission so it can run anywhere: in a thread of
the server process, or in a worker process (``OTEL_DIAG_INGEST_PROCESSES``), which takes the
Python-heavy decode and projection off the server's GIL. Its result is a small picklable
:class:`Summary`; its failures are :class:`~otel_diag.receiver.errors.IngestError` instances
(database errors are classified here, by the storage that raised them), so nothing
driver-specific crosses a process boundary.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field

from otel_diag.config import Settings
from otel_diag.receiver.errors import (
    DatabaseNotReady,
    IngestError,
    InternalError,
    Malformed,
    StoreUnavailable,
    TenantLimited,
    TooLarge,
    UnsupportedMediaType,
)
from otel_diag.receiver.memory import TRIM_AFTER_BYTES, release_free_memory, tune_allocator
from otel_diag.spans.from_otlp import Decoded, MalformedRequest, decode_json, decode_protobuf
from otel_diag.spans.from_otlp_logs import DecodedLogs, decode_logs_json, decode_logs_protobuf
from otel_diag.store import open_storage
from otel_diag.store.port import TenantLimitReached
from otel_diag.store.sink import SpanSink
from otel_diag.store.tenant_budget import BudgetWindow

logger = logging.getLogger(__name__)

PROTOBUF = "protobuf"
JSON = "json"
TRACES = "traces"
LOGS = "logs"
"""The OTLP signal of a request: trace spans, or log records (exceptions kept)."""
_DECODERS = {
    (TRACES, PROTOBUF): decode_protobuf,
    (TRACES, JSON): decode_json,
    (LOGS, PROTOBUF): decode_logs_protobuf,
    (LOGS, JSON): decode_logs_json,
}


@dataclass(slots=True)
class Summary:
    """What one request carried and stored (everything the metrics and the answer need)."""

    spans: int = 0
    accepted: int = 0
    rejected_spans: int = 0
    rejected_tenant: int = 0
    reasons: list[str] = field(default_factory=list)
    dropped_attributes: int = 0
    dropped_events: int = 0
    clamped_times: int = 0
    tenant_claims: int = 0
    tenants: dict[str, int] = field(default_factory=dict)
    error_rows: int = 0
    cost_by_model: dict[tuple[str, str], float] = field(default_factory=dict)
    log_records: int = 0
    other_logs: int = 0
    unlinked_logs: int = 0

    @property
    def rejected(self) -> int:
        return self.rejected_spans + self.rejected_tenant


def gunzip(body: bytes | bytearray, limit: int) -> bytes:
    """Inflate a gzip body, refusing anything that inflates past ``limit`` (gzip bombs)."""
    out = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise Malformed(f"invalid gzip body: {exc}") from None
        if len(out) > limit:
            raise TooLarge(f"request inflates past the {limit}-byte limit")
        if not inflater.eof:
            raise Malformed("truncated gzip body")
        data = inflater.unused_data  # concatenated gzip members
    return bytes(out)


def decode_body(
    body: bytes | bytearray, fmt: str, encoding: str | None, limit: int, signal: str = TRACES
) -> Decoded:
    if encoding == "gzip":
        body = gunzip(body, limit)
    elif encoding not in (None, "", "identity"):
        raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}; use gzip")
    if len(body) > limit:
        raise TooLarge(f"request larger than the {limit}-byte limit")
    try:
        return _DECODERS[signal, fmt](body)
    except MalformedRequest as exc:
        raise Malformed(str(exc)) from None


def ingest_body(
    sink: SpanSink,
    body: bytes | bytearray,
    fmt: str,
    encoding: str | None,
    tenant: str | None,
    limit: int,
    signal: str = TRACES,
) -> Summary:
    """Decode and store one request; raises an :class:`IngestError` (with ``spans`` set)."""
    decoded = decode_body(body, fmt, encoding, limit, signal)
    claims = 0
    if tenant is not None:
        claims = sum(1 for r in decoded.records if r.tenant_id and r.tenant_id != tenant)
    try:
        result = sink.write(decoded.records, tenant=tenant)
    except TenantLimitReached as exc:
        limited = TenantLimited(str(exc), retry_after=max(1.0, exc.retry_after))
        limited.spans = len(decoded.records)
        raise limited from None
    except Exception as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = detail[0][:300] if detail else type(exc).__name__
        failure: IngestError
        if sink.storage.is_schema_missing(exc):
            failure = DatabaseNotReady(f"database not ready (no schema; migrating it): {first}")
        elif sink.storage.is_transient(exc):
            failure = StoreUnavailable(f"database unavailable: {first}")
        else:
            logger.error("otel-diag: storing spans failed", exc_info=exc)
            failure = InternalError(f"internal error while storing spans: {type(exc).__name__}")
        failure.spans = len(decoded.records)
        raise failure from None
    return Summary(
        spans=len(decoded.records) + decoded.rejected,
        accepted=result.accepted,
        rejected_spans=decoded.rejected,
        rejected_tenant=result.rejected,
        reasons=decoded.reasons + result.reasons + decoded.warnings,
        dropped_attributes=decoded.dropped_attributes,
        dropped_events=decoded.dropped_events,
        clamped_times=decoded.clamped_times,
        tenant_claims=claims,
        tenants=dict(result.tenants),
        error_rows=result.error_rows,
        cost_by_model=dict(result.cost_by_model),
        **_log_counts(decoded),
    )


def _log_counts(decoded: Decoded) -> dict[str, int]:
    if not isinstance(decoded, DecodedLogs):
        return {}
    return {
        "log_records": decoded.log_records,
        "other_logs": decoded.other_logs,
        "unlinked_logs": decoded.unlinked,
    }


# --- worker processes ------------------------------------------------------------------------

_worker_sink: SpanSink | None = None


def init_worker(
    settings: Settings, parent_pid: int, new_tenants: BudgetWindow | None = None
) -> None:
    """Process-pool initializer: die with the server, then one storage and sink per worker
    (drawing new tenants from the server's shared ``new_tenants`` budget when given)."""
    global _worker_sink
    _die_with_parent(parent_pid)
    tune_allocator()
    logging.basicConfig(level=logging.WARNING)
    storage = open_storage(settings)
    if not settings.api_keys:  # trusted mode: new tenants are rationed
        storage.limit_new_tenants(settings.new_tenants_per_minute, new_tenants)
    _worker_sink = SpanSink(storage, settings)
    atexit.register(storage.dispose)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the server dies, even by ``kill -9``.

    A pool worker blocks reading its task queue, whose write end it holds itself, so it
    would never notice its parent is gone and would live on (with its memory and database
    connections) under PID 1. Linux delivers SIGKILL on the parent's death
    (``PR_SET_PDEATHSIG``); a watchdog thread polling ``getppid()`` covers other systems
    and the race where the parent died before the signal was armed.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog only
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="otel-diag-parent-watch", daemon=True).start()


def ingest_in_worker(
    body: bytes | bytearray,
    fmt: str,
    encoding: str | None,
    tenant: str | None,
    limit: int,
    signal: str = TRACES,
) -> Summary:
    """:func:`ingest_body` with the worker process's own sink."""
    if _worker_sink is None:
        raise InternalError("ingest worker process was not initialized")
    try:
        return ingest_body(_worker_sink, body, fmt, encoding, tenant, limit, signal)
    finally:
        if len(body) >= TRIM_AFTER_BYTES:  # this process's share of the flood goes back too
            del body
            release_free_memory()
