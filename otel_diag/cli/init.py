"""``otel-diag init``: choose the database, create or migrate it, and say what to do next.

It checks the connection and brings the schema to the latest migration *before* writing
``$OTEL_DIAG_HOME/config.toml``, so a typo in a URL never leaves a config that points
nowhere. An existing config is kept unless ``--force`` is given.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from otel_diag.cli import render
from otel_diag.cli.common import fail, open_tenant
from otel_diag.cli.notice import mark_initialized
from otel_diag.cli.options import json_option
from otel_diag.config import Settings, load_settings, with_overrides
from otel_diag.store import open_storage

_SCHEMES = {
    "postgres://": "postgresql+psycopg://",
    "postgresql://": "postgresql+psycopg://",
}
ALERT_EXAMPLE = """\
# Alert rules, evaluated by `otel-diag serve` (kinds: failure_rate, cost_per_run,
# cost_per_hour, unpriced_model, diagnosis_failures). Uncomment to enable:
#
# [[otel_diag.alerts]]
# name = "agents failing"
# kind = "failure_rate"
# threshold = 0.5          # fraction of finished runs that failed
# window = "15m"
# min_runs = 5
# cooldown = "30m"         # one alert per incident: no repeat within the cooldown
# webhook = "https://hooks.example.com/otel-diag"
"""


def backend_url(backend: str | None, connection: str | None, home: Path) -> tuple[str, str]:
    """(backend, SQLAlchemy URL) from the flags; raises click.UsageError on a mismatch."""
    if connection:
        url = connection.strip()
        for prefix, driver in _SCHEMES.items():
            if url.startswith(prefix):
                url = driver + url[len(prefix) :]
        if "://" not in url:  # a bare path means an SQLite file
            url = f"sqlite:///{Path(url).expanduser().resolve()}"
        found = "postgresql" if url.startswith("postgresql") else url.split(":", 1)[0]
        found = "sqlite" if found.startswith("sqlite") else found
        found = "mongodb" if found.startswith("mongodb") else found
        if backend and backend != found:
            raise click.UsageError(f"--backend {backend} does not match --connection ({found})")
        return found, url
    if backend == "postgresql":
        raise click.UsageError(
            "--backend postgresql needs --connection postgresql://user:password@host:5432/db"
        )
    if backend == "mongodb":
        raise click.UsageError("--backend mongodb needs --connection mongodb://host:27017/db")
    return "sqlite", f"sqlite:///{home / 'otel_diag.db'}"


def config_text(url: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"# otel-diag configuration, written by `otel-diag init` on {stamp}.\n"
        "# Precedence: command-line flags > OTEL_DIAG_* environment variables > this file.\n"
        "[otel_diag]\n"
        f"database_url = {json.dumps(url)}\n"
        '# trace_url_template = "http://localhost:16686/trace/{trace_id}"  # Jaeger\n'
        "\n" + ALERT_EXAMPLE
    )


def write_config(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (it may hold a database password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(tmp, path)


@click.command("init")
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgresql", "mongodb"]),
    default=None,
    help="Database kind (default: sqlite, or what --connection names).",
)
@click.option(
    "--connection",
    "--database-url",
    "connection",
    default=None,
    help="Database URL (postgresql://user:pw@host/db, mongodb://host:27017/db) or an SQLite "
    "file path.",
)
@click.option("--tenant", default=None, help="Tenant whose database to create and check.")
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml.")
@json_option
def init_command(
    backend: str | None, connection: str | None, tenant: str | None, force: bool, as_json: bool
) -> None:
    """Write $OTEL_DIAG_HOME/config.toml, create or migrate the database, print next steps."""
    settings = _settings(tenant, force)
    path = settings.config_file
    existed = path.exists()
    if existed and not force:
        fail(f"{path} already exists (use --force to overwrite it)")
    kind, url = backend_url(backend, connection, settings.home)
    target = with_overrides(settings, database_url=url)
    revision = _create_or_migrate(target)
    write_config(path, config_text(url))
    mark_initialized(settings)
    env_url = os.environ.get("OTEL_DIAG_DATABASE_URL")
    result = {
        "config": str(path),
        "overwritten": existed,
        "backend": kind,
        "database_url": render.safe_url(url),
        "tenant": settings.tenant,
        "schema_revision": revision,
        "env_overrides_config": bool(env_url and env_url != url),
    }
    if as_json:
        render.emit_json(result)
        return
    _print_next_steps(result)


def _create_or_migrate(settings: Settings) -> str | None:
    """Create or migrate the tenant's database (a one-line error if it will not open) and
    return its schema revision.

    Opening a tenant creates its schema (SQL: migrations; MongoDB: the indexes); the
    revision is the storage layout's version.
    """
    storage = open_storage(settings)
    try:
        return open_tenant(storage, settings).schema_revision()
    finally:
        storage.dispose()


def _settings(tenant: str | None, force: bool) -> Settings:
    """Current settings; with --force, an unreadable config.toml is no obstacle."""
    try:
        return load_settings(tenant=tenant)
    except ValueError as exc:
        if not force:
            fail(f"{exc} (fix it, or rewrite it with `otel-diag init --force`)")
        home = os.environ.get("OTEL_DIAG_HOME") or "~/.otel-diag"
        fallback = Settings(home=Path(home).expanduser())
        return with_overrides(fallback, tenant=tenant)


def _print_next_steps(result: dict[str, object]) -> None:
    out = render.console()
    verb = "Overwrote" if result["overwritten"] else "Wrote"
    out.print(f"{verb} {result['config']}")
    out.print(
        f"Database ready: {result['database_url']} ({result['backend']}, tenant "
        f"{result['tenant']}, schema revision {result['schema_revision']})"
    )
    if result["env_overrides_config"]:
        out.print("[yellow]Note: OTEL_DIAG_DATABASE_URL is set and overrides this config.[/]")
    out.print(
        "\n[bold]Next steps[/bold]\n"
        "  1. Run your app with the otel-diag exporter (keep otlp to also send traces to "
        "Jaeger/Tempo):\n"
        "       OTEL_SERVICE_NAME=my-agent opentelemetry-instrument "
        "--traces_exporter otel_diag,otlp python app.py\n"
        "     or try the bundled failing demo:\n"
        "       opentelemetry-instrument --traces_exporter otel_diag "
        "python -m otel_diag.examples.failing_agent\n"
        "  2. Or receive OTLP from any service or Collector (gRPC :4317, HTTP :4318):\n"
        "       otel-diag serve\n"
        "  3. Look at what failed and what it cost:\n"
        "       otel-diag runs    otel-diag errors RUN    otel-diag monitor    otel-diag cost",
        highlight=False,
    )
