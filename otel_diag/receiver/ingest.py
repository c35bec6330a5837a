"""The ingest core both transports share: admission, one hop off the loop, store, answer.

Why this shape:

* **Bounded.** At most ``max_inflight`` requests are held at once (decoding, writing, or
  waiting for a worker thread); one more is refused at once with UNAVAILABLE / 503 and a
  retry delay, so a client that sends faster than the database takes costs at most
  ``max_inflight x max_request_bytes`` of memory, never a growing queue.
* **One hop.** Decompression, decoding, projection and the database write of a request run
  in a single ``run_in_executor`` call; the event loop only moves bytes.
* **A 2xx means stored.** The answer is sent after the rows are committed. A database that
  is down or locked yields UNAVAILABLE / 503, so the client (or a collector's persistent
  queue) resends; writes are idempotent, so a resend never duplicates a row.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc

from otel_diag.config import Settings
from otel_diag.receiver.errors import (
    IngestError,
    InternalError,
    Malformed,
    Overloaded,
    StoreUnavailable,
    TooLarge,
    UnsupportedMediaType,
)
from otel_diag.server.metrics import ServerMetrics
from otel_diag.spans.from_otlp import Decoded, MalformedRequest, decode_json, decode_protobuf
from otel_diag.store.sink import SpanSink

logger = logging.getLogger(__name__)

PROTOBUF = "protobuf"
JSON = "json"


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What a request stored; ``rejected`` > 0 becomes OTLP ``partial_success``."""

    spans: int
    accepted: int
    rejected: int
    error_message: str


def gunzip(body: bytes, limit: int) -> bytes:
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


def _is_transient(exc: BaseException) -> bool:
    """Database failures worth a retry: unreachable, locked, timed out, connection lost."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError)


class Ingestor:
    """Turns raw OTLP request bodies into stored rows for any transport."""

    def __init__(
        self,
        sink: SpanSink,
        settings: Settings,
        metrics: ServerMetrics,
        *,
        workers: int | None = None,
        max_inflight: int | None = None,
        max_request_bytes: int | None = None,
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes or settings.max_request_bytes
        self.max_inflight = max(1, max_inflight or settings.max_inflight)
        workers = max(1, workers or settings.ingest_workers)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="otel-diag-ingest")
        self._lock = threading.Lock()
        self._inflight = 0
        self._bytes = 0
        self._failing = False
        self._closed = False
        metrics.queue_depth.set_function(lambda: self._inflight)
        metrics.inflight_bytes.set_function(lambda: self._bytes)

    @property
    def inflight(self) -> int:
        return self._inflight

    @contextmanager
    def admit(self, nbytes: int = 0) -> Iterator[_Slot]:
        """Hold one in-flight slot for a request, or raise :class:`Overloaded` at once."""
        with self._lock:
            if self._closed or self._inflight >= self.max_inflight:
                refused = True
            else:
                refused = False
                self._inflight += 1
                self._bytes += nbytes
        if refused:
            raise Overloaded("otel-diag is at its in-flight limit; retry later")
        slot = _Slot(self, nbytes)
        try:
            yield slot
        finally:
            with self._lock:
                self._inflight -= 1
                self._bytes -= slot.nbytes

    async def process(
        self,
        body: bytes,
        *,
        fmt: str,
        transport: str,
        encoding: str | None = None,
        tenant: str | None = None,
    ) -> IngestOutcome:
        """Decode and store one request off the event loop; raises an :class:`IngestError`."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._process_sync, body, fmt, encoding, tenant, transport
            )
        except IngestError:
            raise
        except RuntimeError as exc:  # the executor was shut down: we are stopping
            raise Overloaded(f"otel-diag is shutting down: {exc}") from None
        except Exception as exc:  # a bug of ours: answer INTERNAL, keep serving
            logger.error("otel-diag: ingest failed", exc_info=exc)
            raise InternalError(f"internal error: {type(exc).__name__}") from None

    def count(self, transport: str, result: str) -> None:
        """Count one finished request (``ok`` or an :class:`IngestError` reason)."""
        self.metrics.requests.labels(transport, result).inc()

    def _decode(self, body: bytes, fmt: str, encoding: str | None) -> Decoded:
        if encoding == "gzip":
            body = gunzip(body, self.max_request_bytes)
        elif encoding not in (None, "", "identity"):
            raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}; use gzip")
        if len(body) > self.max_request_bytes:
            raise TooLarge(f"request larger than the {self.max_request_bytes}-byte limit")
        try:
            return decode_protobuf(body) if fmt == PROTOBUF else decode_json(body)
        except MalformedRequest as exc:
            raise Malformed(str(exc)) from None

    def _process_sync(
        self, body: bytes, fmt: str, encoding: str | None, tenant: str | None, transport: str
    ) -> IngestOutcome:
        decoded = self._decode(body, fmt, encoding)
        m = self.metrics
        spans = len(decoded.records) + decoded.rejected
        m.spans_received.labels(transport).inc(spans)
        if decoded.dropped_attributes:
            m.attributes_dropped.inc(decoded.dropped_attributes)
        if tenant is not None:
            claims = sum(1 for r in decoded.records if r.tenant_id and r.tenant_id != tenant)
            if claims:
                m.tenant_overrides.labels(tenant).inc(claims)
        try:
            result = self.sink.write(decoded.records, tenant=tenant)
        except Exception as exc:
            m.spans_refused.labels(
                "database_unavailable" if _is_transient(exc) else "internal"
            ).inc(len(decoded.records))
            raise self._store_failure(exc) from None
        if self._failing:
            self._failing = False
            logger.warning("otel-diag: database writes recovered")
        if decoded.rejected:
            m.spans_dropped.labels("invalid_span").inc(decoded.rejected)
        if result.rejected:
            m.spans_dropped.labels("invalid_tenant").inc(result.rejected)
        for name, count in result.tenants.items():
            m.spans_stored.labels(name).inc(count)
        if result.error_rows:
            m.error_rows.inc(result.error_rows)
        for model, cost in result.cost_by_model.items():
            if cost > 0:
                m.observed_cost.labels(model).inc(cost)
        reasons = decoded.reasons + result.reasons
        return IngestOutcome(
            spans=spans,
            accepted=result.accepted,
            rejected=decoded.rejected + result.rejected,
            error_message="; ".join(reasons),
        )

    def _store_failure(self, exc: Exception) -> IngestError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = detail[0][:300] if detail else type(exc).__name__
        if _is_transient(exc):
            if not self._failing:
                self._failing = True
                logger.error(
                    "otel-diag: database unavailable (%s: %s); refusing ingest with "
                    "UNAVAILABLE until it recovers",
                    type(exc).__name__,
                    first,
                )
            return StoreUnavailable(f"database unavailable: {first}")
        logger.error("otel-diag: ingest failed", exc_info=exc)
        return InternalError(f"internal error while storing spans: {type(exc).__name__}")

    def close(self, wait: bool = True) -> None:
        """Refuse new requests and (optionally) wait for the ones being written."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


class _Slot:
    """One admitted request; transports reading a body in chunks report its size here."""

    def __init__(self, ingestor: Ingestor, nbytes: int) -> None:
        self._ingestor = ingestor
        self.nbytes = nbytes

    def add_bytes(self, n: int) -> None:
        with self._ingestor._lock:
            self._ingestor._bytes += n
        self.nbytes += n
