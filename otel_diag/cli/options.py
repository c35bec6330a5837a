"""Click options the reporting commands share: ``--since``, ``--json``, run filters.

``--since`` takes what operators type (``24h``, ``7d``, an ISO time) through
:mod:`otel_diag.timewindow`, so the CLI and the alert rules read windows the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

from otel_diag.rows import RunStatus
from otel_diag.timewindow import parse_duration, parse_since

F = TypeVar("F", bound=Callable[..., Any])


class SinceType(click.ParamType):
    """A start time: ``24h`` / ``7d`` back from now, or an ISO 8601 date or time (UTC)."""

    name = "SINCE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_since(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):
    """A length of time: ``90s``, ``15m``, ``1h``."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SINCE = SinceType()
DURATION = DurationType()


def json_option(func: F) -> F:
    """``--json``: machine-readable output on stdout instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
    )(func)


def since_option(default: str | None, help_text: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        return click.option(
            "--since", type=SINCE, default=default, show_default=True, help=help_text
        )(func)

    return decorate


def run_filter_options(func: F) -> F:
    """``--status`` and ``--agent``: the run filters ``runs`` and ``export`` share."""
    func = click.option("--agent", default=None, help="Only runs of this agent.")(func)
    func = click.option(
        "--status",
        type=click.Choice([status.value for status in RunStatus]),
        default=None,
        help="Only runs with this status.",
    )(func)
    return func
