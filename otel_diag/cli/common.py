"""Options and plumbing every ``otel-diag`` command shares.

``@store_options`` adds ``--database-url`` and ``--tenant``; :func:`open_store` turns
settings into the storage and the tenant's store (:mod:`otel_diag.store.port`), and
:func:`fail` is the one way a command reports a user error: one line on stderr, exit status
1, no traceback. :func:`database_failures` gives a database that fails mid-command (down,
locked, timed out, emptied) the same one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click

from otel_diag.cli import LOG_LEVEL_KEY
from otel_diag.cli.notice import first_use_notice
from otel_diag.config import Settings, load_settings
from otel_diag.store import open_storage
from otel_diag.store.port import Storage, TenantStore

F = TypeVar("F", bound=Callable[..., Any])


def store_options(func: F) -> F:
    """``--database-url URL`` and ``--tenant ID`` (both default from env / config)."""
    func = click.option(
        "--tenant",
        default=None,
        help="Tenant to read (default: OTEL_DIAG_TENANT or 'default').",
    )(func)
    func = click.option(
        "--database-url",
        default=None,
        envvar=None,
        help="SQLAlchemy URL (default: OTEL_DIAG_DATABASE_URL, config.toml, or embedded SQLite).",
    )(func)
    return func


def process_log_level() -> str:
    """Log level of a long-running command (serve, diagnose --worker): the group's
    ``--log-level`` when given, else ``info`` (one line per diagnosis)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(LOG_LEVEL_KEY) if ctx is not None else None
    return str(given) if given else "info"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def settings_from(database_url: str | None, tenant: str | None = None, **extra: Any) -> Settings:
    try:
        return load_settings(database_url=database_url, tenant=tenant, **extra)
    except ValueError as exc:
        fail(str(exc))


def open_store(settings: Settings) -> tuple[Storage, TenantStore]:
    """The storage and the tenant's store, or a one-line error for a bad URL or tenant id or
    a database that will not open."""
    storage = open_storage(settings)
    return storage, open_tenant(storage, settings)


def open_tenant(storage: Storage, settings: Settings) -> TenantStore:
    """The tenant's store (its database created and migrated if new), or a one-line error.

    Opening is parsing the URL, connecting and migrating: whatever stops it (no server, no
    rights, a file that is not a database), the user gets one line that names the database.
    """
    try:
        store = storage.tenant(settings.tenant)
    except ValueError as exc:  # an unusable URL or an invalid tenant id: the message says which
        storage.dispose()
        fail(str(exc))
    except OSError as exc:
        storage.dispose()
        fail(f"cannot open database {where(settings)}: {exc}")
    except Exception as exc:
        storage.dispose()
        fail(f"cannot open database {where(settings)}: {first_line(exc)}")
    first_use_notice(settings)
    return store


def open_all_tenants(settings: Settings) -> Storage:
    """The storage over the configured URL with no tenant opened yet (a worker finds its
    tenants itself), or a one-line error for a URL it cannot use."""
    storage = open_storage(settings)
    try:
        storage.discover_tenants()
    except ValueError as exc:
        storage.dispose()
        fail(str(exc))
    except Exception as exc:
        if not (storage.is_transient(exc) or storage.is_schema_missing(exc)):
            storage.dispose()
            fail(f"cannot open database {where(settings)}: {first_line(exc)}")
        # Down for now: a worker waits for its database.
    return storage


@contextmanager
def database_failures(storage: Storage) -> Iterator[None]:
    """Turn the database failing inside the block (down, locked, timed out, its schema gone)
    into a one-line error; anything else (a bug) keeps its traceback."""
    try:
        yield
    except Exception as exc:
        if storage.is_transient(exc) or storage.is_schema_missing(exc):
            fail(f"database error: {first_line(exc)}")
        raise


def first_line(exc: BaseException) -> str:
    """The first line of what the driver said (the wrapped driver error when there is one)."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__


def where(settings: Settings) -> str:
    """The database a message names: its URL without the user and password."""
    url = settings.resolved_database_url
    return url.split("@")[-1] if "@" in url else url
