"""Options and plumbing every ``otel-diag`` command shares.

``@store_options`` adds ``--database-url`` and ``--tenant``; :func:`open_store` turns them
into settings and an engine, and :func:`fail` is the one way a command reports a user error:
one line on stderr, exit status 1, no traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from otel_diag.cli.notice import first_use_notice
from otel_diag.config import Settings, load_settings
from otel_diag.store.sql.engine import (
    DatabaseURLError,
    InvalidTenantError,
    TenantDBManager,
    tenant_url,
)

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


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def settings_from(database_url: str | None, tenant: str | None = None, **extra: Any) -> Settings:
    try:
        return load_settings(database_url=database_url, tenant=tenant, **extra)
    except ValueError as exc:
        fail(str(exc))


def open_store(settings: Settings) -> tuple[TenantDBManager, Engine]:
    """Manager and the tenant's engine, or a one-line error for bad URLs / dead databases."""
    manager = TenantDBManager(settings.resolved_database_url, settings)
    try:
        engine = manager.get_engine(settings.tenant)
        first_use_notice(settings)
        return manager, engine
    except (DatabaseURLError, InvalidTenantError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        manager.dispose()
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        fail(f"cannot open database {_where(settings)}: {detail[0] if detail else exc}")
    except OSError as exc:
        fail(f"cannot open database {_where(settings)}: {exc}")


def open_manager(settings: Settings) -> TenantDBManager:
    """A manager over the configured URL, checked but with no tenant opened yet."""
    try:
        tenant_url(settings.resolved_database_url, settings.tenant)
    except DatabaseURLError as exc:
        fail(str(exc))
    return TenantDBManager(settings.resolved_database_url, settings)


def _where(settings: Settings) -> str:
    url = settings.resolved_database_url
    return url.split("@")[-1] if "@" in url else url


def handle_errors(func: F) -> F:
    """Turn database errors raised mid-command into one-line errors too."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            fail(f"database error: {detail[0] if detail else type(exc).__name__}")

    return wrapper  # type: ignore[return-value]
