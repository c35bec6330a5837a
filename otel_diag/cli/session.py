"""Open the store for one command, and turn a typed run reference into a run id.

Commands read through :func:`reading`: settings from flags / env / config, the tenant's
engine (a one-line error for a bad URL or a dead database), one connection, and the engines
disposed afterwards, so a CLI process never leaves pooled connections behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from otel_diag.cli.common import fail, open_store, settings_from
from otel_diag.config import Settings
from otel_diag.store.sql.queries import AmbiguousRunError, resolve_run

if TYPE_CHECKING:
    from sqlalchemy import Connection


@contextmanager
def reading(
    database_url: str | None, tenant: str | None, **extra: Any
) -> Iterator[tuple[Settings, Connection]]:
    """``(settings, connection)`` for the tenant's database."""
    settings = settings_from(database_url, tenant, **extra)
    manager, engine = open_store(settings)
    try:
        with engine.connect() as conn:
            yield settings, conn
    finally:
        manager.dispose()


def resolve_or_fail(conn: Connection, ref: str) -> uuid.UUID:
    """The run a user means by ``ref`` (full UUID, unique prefix, trace id), or exit 1."""
    try:
        run_id = resolve_run(conn, ref)
    except AmbiguousRunError as exc:
        fail(f"{exc}; type more characters")
    if run_id is None:
        fail(f"no run matches {ref!r} (give a run id, a unique prefix of one, or a trace id)")
    return run_id


def window_report(
    database_url: str | None,
    tenant: str | None,
    since: datetime,
    compute: Callable[[Connection, datetime, datetime], dict[str, Any]],
) -> tuple[Settings, dict[str, Any]]:
    """``compute(conn, since, now)`` for a time-window command, with the window stated."""
    until = datetime.now(UTC)
    with reading(database_url, tenant) as (settings, conn):
        data = compute(conn, since, until)
    window = {"tenant": settings.tenant, "since": since.isoformat(), "until": until.isoformat()}
    return settings, {**window, **data}
