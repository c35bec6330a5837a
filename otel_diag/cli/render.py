"""How the CLI shows things: one console, one way to print money, tokens, times and ids.

Tables are rich; ``--json`` output goes through :func:`emit_json` so scripts get the same
keys whatever the backend. When stdout is not a terminal (pipes, CI, tests) the console is
wide enough that ids and URLs are never cut, and colour codes are left out.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from otel_diag.config import Settings

NONE = "-"
_SPARKS = "▁▂▃▄▅▆▇█"
_PASSWORD = re.compile(r"(://[^:/@]+:)[^@/]*@")
_STATUS_STYLE = {"failed": "bold red", "ok": "green", "running": "yellow"}


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); wide and plain when not attached to a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream)
    width = int(os.environ.get("COLUMNS", "0") or 0) or 160
    return Console(file=stream, width=max(width, 100), no_color=True, highlight=False)


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (datetimes and UUIDs as strings)."""
    click.echo(json.dumps(data, indent=2, default=str, sort_keys=False))


def table(
    title: str | None, *columns: str, right: Sequence[str] = (), whole: Sequence[str] = ()
) -> Table:
    """A table with the house style.

    Columns named in ``right`` are right-aligned numbers; those in ``whole`` (URLs, ids)
    are never wrapped, so they stay copyable; the others fold when space runs out.
    """
    out = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for name in columns:
        out.add_column(
            name,
            justify="right" if name in right else "left",
            overflow="ignore" if name in whole else "fold",
            no_wrap=name in whole,
        )
    return out


def money(value: float | None, *, unpriced: bool = False) -> str:
    """``$0.000160``-style amounts: enough digits to see sub-cent LLM calls."""
    if value is None:
        return "unpriced" if unpriced else NONE
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.2f}"
    if abs(value) >= 0.01:
        return f"${value:,.4f}"
    return f"${value:.6f}"


def count(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


def failures(failures: int, attempts: int) -> str:
    """``"1 failure, 3 attempts"``: distinct failures, and occurrences when retries add some."""
    text = f"{failures:,} failure{'' if failures == 1 else 's'}"
    if attempts > failures:
        text += f", {attempts:,} attempts"
    return text


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


def millis(value: float | None) -> str:
    """A duration in ms as people read it: 350ms, 1.2s, 2m03s."""
    if value is None:
        return NONE
    if value < 1000:
        return f"{value:.0f}ms"
    seconds = value / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def when(value: str | datetime | None) -> str:
    """A stored timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if value is None:
        return NONE
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def short_id(value: Any) -> str:
    """The first 8 characters of a run id: enough for ``errors RUN`` (a unique prefix)."""
    return str(value)[:8] if value else NONE


def status(value: str | None) -> Text:
    return Text(value or NONE, style=_STATUS_STYLE.get(value or "", ""))


def clip(value: Any, limit: int) -> str:
    """``value`` on one line, cut to ``limit`` characters with an ellipsis."""
    if value is None:
        return NONE
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sparkline(values: Sequence[float]) -> str:
    """``▁▃█▅`` from numbers (an empty string for no values)."""
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return _SPARKS[0] * len(values)
    return "".join(
        _SPARKS[min(len(_SPARKS) - 1, int(v / top * (len(_SPARKS) - 1)))] for v in values
    )


def safe_url(url: str) -> str:
    """A database URL with its password replaced by ``***`` (for messages and output)."""
    return _PASSWORD.sub(r"\1***@", url)


def linked(label: str, url: str | None) -> Text:
    """``label`` as a terminal hyperlink to ``url`` (plain text where links are unsupported)."""
    return Text(label, style=f"link {url}" if url else "")


def print_trace_links(out: Console, links: Sequence[tuple[str, str | None]]) -> None:
    """``id  url`` lines under a table, so trace links stay whole and copyable."""
    shown = [(label, url) for label, url in links if url]
    if shown:
        out.print("Traces:", style="bold")
        for label, url in shown:
            out.print(f"  {label}  {url}", soft_wrap=True, highlight=False)


def with_trace_urls(rows: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """Each row with ``trace_url`` (None without ``OTEL_DIAG_TRACE_URL_TEMPLATE``)."""
    for row in rows:
        row["trace_url"] = settings.trace_url(row.get("trace_id"))
    return rows
