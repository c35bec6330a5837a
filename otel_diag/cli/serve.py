"""``otel-diag serve``: OTLP/gRPC (4317), OTLP/HTTP + REST API + /metrics (4318), workers.

Runs in the foreground until SIGINT / SIGTERM, then stops gracefully: in-flight requests are
written and answered, background services stop, databases close. Without API keys the
server only binds loopback addresses unless ``--insecure`` is given.
"""

from __future__ import annotations

import click

from otel_diag.cli.common import fail, first_line, process_log_level, settings_from, where
from otel_diag.logs import LEVELS, configure_logging


def browsable(host: str) -> str:
    """The host part of a URL a person can open: a wildcard bind is reached on loopback."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--grpc-port", default=4317, show_default=True, type=int, help="OTLP/gRPC port.")
@click.option(
    "--http-port",
    default=4318,
    show_default=True,
    type=int,
    help="OTLP/HTTP, REST API, web console, /healthz, /readyz and /metrics port.",
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL (default: OTEL_DIAG_DATABASE_URL, config.toml, or embedded SQLite).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow binding a non-loopback address without API keys (trusted mode).",
)
@click.option(
    "--no-background",
    is_flag=True,
    help="Do not run the diagnosis worker and alert evaluator in this process.",
)
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(LEVELS, case_sensitive=False),
    help="info (default): otel-diag's own lines, one per diagnosis; debug: litellm's and "
    "httpx's too.",
)
def serve_command(
    host: str,
    grpc_port: int,
    http_port: int,
    database_url: str | None,
    insecure: bool,
    no_background: bool,
    log_level: str | None,
) -> None:
    """Receive OTLP traces and serve the REST API and metrics."""
    configure_logging(log_level or process_log_level())
    settings = settings_from(database_url)
    from otel_diag.server.runner import run_until_signal  # grpc, FastAPI: only for serve
    from otel_diag.server.serve import BindRefused, OtelDiagServer
    from otel_diag.server.services import background_services
    from otel_diag.store import open_storage
    from otel_diag.tenancy import TenancyConfigError

    storage = open_storage(settings)
    try:
        services = [] if no_background else background_services(storage, settings)
        server = OtelDiagServer(
            settings,
            host=host,
            grpc_port=grpc_port,
            http_port=http_port,
            insecure=insecure,
            storage=storage,
            services=services,
        )
    except (BindRefused, TenancyConfigError, ValueError) as exc:  # incl. a bad alert rule
        storage.dispose()
        fail(str(exc))

    def started(s: OtelDiagServer) -> None:
        click.echo(
            f"otel-diag serving: OTLP/gRPC {host}:{s.grpc_port}  "
            f"OTLP/HTTP + API http://{host}:{s.http_port}  (database {where(settings)})\n"
            f"web console: http://{browsable(host)}:{s.http_port}/",
            err=True,
        )

    try:
        run_until_signal(server, started)
        click.echo("otel-diag stopped", err=True)
    except OSError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"serve stopped: {first_line(exc)}")
    finally:
        storage.dispose()
