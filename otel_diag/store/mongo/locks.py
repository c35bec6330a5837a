"""Lock documents: writers of the same traces (and runs) take turns, without transactions.

The SQL store serializes the writers of one trace with a transaction-scoped advisory lock
(PostgreSQL) or ``BEGIN IMMEDIATE`` (SQLite); without that, a writer could miss the
``trace_runs`` entry another is about to write and split a trace over two runs, or two
writers could settle one trace's propagated errors differently. MongoDB's answer here:
one document per held key in the tenant's ``locks`` collection, inserted with the key as
``_id`` (the unique index is the mutex) and deleted on release.

All or nothing: a writer that finds any of its keys taken deletes the ones it got and tries
again after a short random pause, so no writer ever waits while holding a lock it took in
the same call (no deadlock, whatever the order). A lock carries an expiry (``lease``); a
writer that died holding one delays the others until then, never forever. Waiting longer
than ``timeout`` raises :class:`~otel_diag.store.mongo.failures.LockWaitTimeout`, which is
transient: the receiver answers "retry later".
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pymongo.database import Database
from pymongo.errors import BulkWriteError

from otel_diag.store.mongo.codec import to_us
from otel_diag.store.mongo.failures import LockWaitTimeout

LEASE_S = 60.0
"""How long a lock outlives a writer that died holding it."""


def _now_us() -> int:
    return to_us(datetime.now(UTC))


def _try(db: Database, keys: list[str], owner: str, lease: float) -> bool:
    now = _now_us()
    until = now + int(lease * 1e6)
    docs = [{"_id": k, "owner": owner, "until": until} for k in keys]
    try:
        db.locks.insert_many(docs, ordered=False)
        return True
    except BulkWriteError as exc:
        failed = {docs[e["index"]]["_id"] for e in exc.details.get("writeErrors", ())}
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", ())):
            raise
    got = [k for k in keys if k not in failed]
    if got:
        db.locks.delete_many({"_id": {"$in": got}, "owner": owner})
    # Locks of a writer that died: free once their lease ran out.
    db.locks.delete_many({"_id": {"$in": sorted(failed)}, "until": {"$lt": now}})
    return False


@contextmanager
def taken(db: Database, key: str, *, lease: float = LEASE_S) -> Iterator[bool]:
    """Try once to hold ``key`` for the block: yields whether it was free (never waits)."""
    owner = uuid.uuid4().hex
    got = _try(db, [key], owner, lease)
    try:
        yield got
    finally:
        if got:
            db.locks.delete_many({"_id": {"$in": [key]}, "owner": owner})


@contextmanager
def held(
    db: Database, keys: Iterable[str], *, timeout: float, lease: float = LEASE_S
) -> Iterator[None]:
    """Hold every key of ``keys`` for the duration of the block (see the module docstring)."""
    wanted = sorted(set(keys))
    if not wanted:
        yield
        return
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    pause = 0.002
    while not _try(db, wanted, owner, lease):
        if time.monotonic() > deadline:
            raise LockWaitTimeout(
                f"another writer held {len(wanted)} trace/run lock(s) for more than "
                f"{timeout:g} s; retry"
            )
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(pause * 2, 0.05)
    try:
        yield
    finally:
        db.locks.delete_many({"_id": {"$in": wanted}, "owner": owner})
