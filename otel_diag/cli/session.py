"""Open the store for one command, and turn a typed run reference into a run id.

Commands read through :func:`reading`: settings from flags / env / config, the tenant's
:class:`~otel_diag.store.port.TenantStore` (a one-line error for a bad URL or a dead
database, and for a database that fails while the block reads), and the storage disposed
afterwards, so a CLI process never leaves pooled connections behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from otel_diag.cli.common import database_failures, fail, open_store, settings_from
from otel_diag.config import Settings
from otel_diag.store.port import AmbiguousRunError, TenantStore

T = TypeVar("T")


@contextmanager
def reading(
    database_url: str | None, tenant: str | None, **extra: Any
) -> Iterator[tuple[Settings, TenantStore]]:
    """``(settings, store)`` for the tenant's data."""
    settings = settings_from(database_url, tenant, **extra)
    storage, store = open_store(settings)
    try:
        with database_failures(storage):
            yield settings, store
    finally:
        storage.dispose()


def resolve_or_fail(store: TenantStore, ref: str) -> uuid.UUID:
    """The run a user means by ``ref`` (full UUID, unique prefix, trace id), or exit 1."""
    try:
        run_id = store.resolve_run(ref)
    except AmbiguousRunError as exc:
        fail(f"{exc}; type more characters")
    if run_id is None:
        fail(f"no run matches {ref!r} (give a run id, a unique prefix of one, or a trace id)")
    return run_id


def window_report(
    database_url: str | None,
    tenant: str | None,
    since: datetime,
    compute: Callable[[TenantStore, datetime, datetime], T],
) -> tuple[Settings, dict[str, str], T]:
    """``compute(store, since, now)`` for a time-window command, and the window as JSON
    (tenant, since, until) for its ``--json`` output."""
    until = datetime.now(UTC)
    with reading(database_url, tenant) as (settings, store):
        data = compute(store, since, until)
    window = {"tenant": settings.tenant, "since": since.isoformat(), "until": until.isoformat()}
    return settings, window, data
