"""The one-time "no configuration yet" notice.

Any command works before ``otel-diag init``: with no database configured anywhere it uses
the embedded SQLite file under ``$OTEL_DIAG_HOME``. The first such use says so (on stderr,
so ``--json`` output stays clean) and leaves a marker file, so the notice appears once.
"""

from __future__ import annotations

from pathlib import Path

import click

from otel_diag.config import Settings

MARKER = ".first-use-notice"


def marker_path(settings: Settings) -> Path:
    return settings.home / MARKER


def mark_initialized(settings: Settings) -> None:
    """Record that the user has chosen a setup (``init`` calls this), silencing the notice."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        marker_path(settings).touch()
    except OSError:
        return


def first_use_notice(settings: Settings) -> bool:
    """Print the notice if nothing is configured and it was never shown; True if printed."""
    if settings.database_url or settings.config_file.exists():
        return False
    marker = marker_path(settings)
    if marker.exists():
        return False
    click.echo(
        "otel-diag: no configuration yet, using the embedded SQLite database at "
        f"{settings.home / 'otel_diag.db'} (run `otel-diag init` to choose another; "
        "this notice is shown once).",
        err=True,
    )
    mark_initialized(settings)
    return True
