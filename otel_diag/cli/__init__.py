"""``otel-diag`` command line: a click group whose subcommands load lazily.

Commands live in their own modules and are named in :data:`COMMANDS` as
``"module:attribute"``; a command's module is imported only when that command runs, so
``otel-diag --help`` stays fast and a command never pays for another's imports (litellm,
grpc, FastAPI).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="otel-diag")
def main() -> None:
    """OpenTelemetry-native failure diagnosis for LLM and agent applications."""
