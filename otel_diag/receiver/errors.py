"""How an ingest request can fail, and what each failure means on the wire.

One exception type per OTLP outcome, carrying both its gRPC status name and HTTP status, so
the two transports answer alike: malformed -> INVALID_ARGUMENT / 400, too large ->
RESOURCE_EXHAUSTED / 413, overloaded or database down -> UNAVAILABLE / 503 with a retry
delay (the client keeps the data and resends), our own bug -> INTERNAL / 500.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base: ``grpc_code`` is a ``grpc.StatusCode`` name; ``reason`` labels the metrics."""

    grpc_code = "INTERNAL"
    http_status = 500
    reason = "internal"
    retry_after: float | None = None
    spans = 0
    """Spans the refused request carried, when it got far enough to know."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.retry_after is not None


class Malformed(IngestError):
    grpc_code = "INVALID_ARGUMENT"
    http_status = 400
    reason = "malformed"


class TooLarge(IngestError):
    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 413
    reason = "too_large"


class UnsupportedMediaType(IngestError):
    grpc_code = "INVALID_ARGUMENT"
    http_status = 415
    reason = "unsupported_media_type"


class Overloaded(IngestError):
    """Too many requests in flight: refuse now rather than queue without bound."""

    grpc_code = "UNAVAILABLE"
    http_status = 503
    reason = "overloaded"
    retry_after = 1.0


class SlowUpload(Overloaded):
    """A body that arrived slower than the minimum rate (or not in time): cut, so a slow
    client cannot hold an ingest slot; a real client resends."""

    reason = "slow_upload"


class StoreUnavailable(IngestError):
    """The database cannot take the write right now (down, locked, timing out)."""

    grpc_code = "UNAVAILABLE"
    http_status = 503
    reason = "database_unavailable"
    retry_after = 5.0


class DatabaseNotReady(StoreUnavailable):
    """The database answers but has no schema (restored empty, replaced, wiped): it is being
    migrated again, so a resend soon succeeds."""

    reason = "database_not_ready"
    retry_after = 1.0


class TenantLimited(IngestError):
    """Trusted mode: the request names a new tenant beyond the per-minute creation budget.
    RESOURCE_EXHAUSTED with a RetryInfo (retryable per the OTLP spec) / 429 + Retry-After."""

    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 429
    reason = "tenant_limit"
    retry_after = 60.0


class InternalError(IngestError):
    """A bug on our side; not retryable (resending the same request would fail again)."""
