"""``otel-diag`` command line: a click group whose subcommands load lazily.

Commands live in their own modules and are named in :data:`COMMANDS` as
``"module:attribute"``; a command's module is imported only when that command runs, so
``otel-diag --help`` stays fast and a command never pays for another's imports (litellm,
grpc, FastAPI).
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

import click

from otel_diag.logs import LEVELS, configure_logging
from otel_diag.version import __version__

COMMANDS: dict[str, str] = {
    "init": "otel_diag.cli.init:init_command",
    "runs": "otel_diag.cli.runs:runs_command",
    "errors": "otel_diag.cli.errors:errors_command",
    "diagnose": "otel_diag.cli.diagnose:diagnose_command",
    "monitor": "otel_diag.cli.monitor:monitor_command",
    "stats": "otel_diag.cli.stats:stats_command",
    "cost": "otel_diag.cli.cost:cost_command",
    "export": "otel_diag.cli.export:export_command",
    "serve": "otel_diag.cli.serve:serve_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command: Any = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


def versions() -> str:
    """otel-diag's version and those of the LLM libraries it diagnoses with (installed
    distributions, read without importing them)."""
    found = []
    for dist in ("litellm", "openai"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} not installed")
    return f"otel-diag {__version__} ({', '.join(found)})"


def _print_version(ctx: click.Context) -> None:
    if not ctx.resilient_parsing:
        click.echo(versions())
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    help="Show otel-diag's, litellm's and openai's versions and exit.",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default=None,
    help="Log level on stderr (default warning; serve and diagnose --worker: info, one line "
    "per diagnosis). debug also shows litellm's and httpx's lines.",
)
@click.pass_context
def main(ctx: click.Context, log_level: str | None) -> None:
    """OpenTelemetry-native failure diagnosis for LLM and agent applications."""
    ctx.meta[LOG_LEVEL_KEY] = log_level
    configure_logging(log_level or "warning")


LOG_LEVEL_KEY = "otel_diag.log_level"
"""``ctx.meta`` key of the group's ``--log-level`` (None when not given)."""
