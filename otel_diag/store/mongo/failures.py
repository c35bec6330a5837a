"""Which MongoDB failures are worth a retry, in the words the rest of otel-diag uses.

A receiver answers UNAVAILABLE / 503 (retry later) for an outage, a timeout, a primary
stepping down or a lock wait that ran out, and INTERNAL only for real bugs: collectors drop
data on INTERNAL. MongoDB has no schema that can vanish (collections and databases are
created by the first write), so ``is_schema_missing`` is never true here; lost indexes are
re-created by :meth:`~otel_diag.store.mongo.storage.MongoStorage.repair`.
"""

from __future__ import annotations

from pymongo import errors

# Server error codes that mean "not now": interrupted / shutting down / not primary /
# stepped down / timed out / lock or write conflicts / host unreachable.
TRANSIENT_CODES = frozenset(
    {6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 24}
)


class LockWaitTimeout(TimeoutError):
    """Another writer held a trace's or run's lock for longer than the database timeout."""


def is_transient(error: BaseException) -> bool:
    """True for an unreachable, timed-out, restarting or busy server: a retry can succeed."""
    if isinstance(error, LockWaitTimeout | errors.ConnectionFailure | errors.ExecutionTimeout):
        return True  # ConnectionFailure covers AutoReconnect, NetworkTimeout, NotPrimaryError
    if isinstance(error, errors.ServerSelectionTimeoutError | errors.WTimeoutError):
        return True
    if isinstance(error, errors.PyMongoError) and (
        error.has_error_label("RetryableWriteError")
        or error.has_error_label("TransientTransactionError")
    ):
        return True
    if isinstance(error, errors.BulkWriteError):
        return any(e.get("code") in TRANSIENT_CODES for e in error.details.get("writeErrors", ()))
    if isinstance(error, errors.OperationFailure):
        return error.code in TRANSIENT_CODES
    return isinstance(error, OSError)
