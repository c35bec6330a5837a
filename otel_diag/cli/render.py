"""How the CLI shows things: one console, one way to print money, tokens, times and ids.

Tables are rich; ``--json`` output goes through :func:`emit_json` so scripts get the same
keys whatever the backend. On a terminal, tables fit the window: long names are clipped
with an ellipsis and columns fold. When stdout is not a terminal (pipes, CI logs, ``make
demo``) the output is what gets kept, so it must be complete: the width is ``COLUMNS``
exactly when set (160 otherwise), colour codes are left out, no value or header is ever
cut, and a table that cannot fit the width without cutting one is printed as one record per
row instead (see :class:`CompleteTable`). Free text (messages, root causes) is the one thing
bounded there, beyond :data:`OFF_TTY_TEXT_LIMIT` characters and with a marker that says how
much was left out (``--json`` has all of it).
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
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from otel_diag.config import Settings
from otel_diag.redact import TRUNCATION_MARKER
from otel_diag.rows import Run, RunStatus, to_json

NONE = "-"
OFF_TTY_WIDTH = 160
"""Line width off a terminal when ``COLUMNS`` is not set."""
OFF_TTY_TEXT_LIMIT = 1000
"""Longest free text (a message, a root cause) a table cell shows off a terminal; the rest
is replaced by a ``…[truncated N chars]`` marker."""
_UNBOUNDED = 1_000_000
_SPARKS = "▁▂▃▄▅▆▇█"
_PASSWORD = re.compile(r"(://[^:/@]+:)[^@/]*@")
_STATUS_STYLE: dict[str, str] = {
    RunStatus.FAILED: "bold red",
    RunStatus.OK: "green",
    RunStatus.RUNNING: "yellow",
}


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); plain, ``COLUMNS`` (or 160) wide off a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=off_tty_width(), no_color=True, highlight=False)


def off_tty_width() -> int:
    """``COLUMNS`` exactly when it is a positive number, else :data:`OFF_TTY_WIDTH`."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return OFF_TTY_WIDTH
    return width if width > 0 else OFF_TTY_WIDTH


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (datetimes and UUIDs as strings)."""
    click.echo(json.dumps(data, indent=2, default=str, sort_keys=False))


def table(
    title: str | None,
    *columns: str,
    right: Sequence[str] = (),
    whole: Sequence[str] = (),
    text: Sequence[str] = (),
) -> Table:
    """A table with the house style.

    Columns named in ``right`` are right-aligned numbers; those in ``whole`` (URLs, ids)
    are never wrapped, so they stay copyable; those in ``text`` hold free text (messages).
    On a terminal the other columns fold when space runs out; off a terminal every column
    but the ``text`` ones keeps each value on one line (:class:`CompleteTable`).
    """
    out = CompleteTable(
        title=title, title_justify="left", header_style="bold", expand=False, text=text
    )
    for name in columns:
        out.add_column(
            name,
            justify="right" if name in right else "left",
            overflow="ignore" if name in whole else "fold",
            no_wrap=name in whole,
        )
    return out


class CompleteTable(Table):
    """A rich ``Table`` that, off a terminal, never cuts or folds a value or a header.

    Every column gets its full width, except ``text`` columns, which wrap at word
    boundaries (never narrower than their longest word) to fit the line. When even that does
    not fit, the table is printed as records: one block per row, one ``header  value`` line
    per column. On a terminal it is a plain rich ``Table``. (It overrides rich's layout
    hook ``_calculate_column_widths``, which rich 13 to 15 all have.)
    """

    def __init__(self, *args: Any, text: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text_columns = frozenset(text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not console.is_terminal and self.columns:
            room = options.update_width(max(1, options.max_width - self._extra_width))
            if self._complete_widths(console, room) is None:
                yield self._records()
                return
        yield from super().__rich_console__(console, options)

    def _calculate_column_widths(self, console: Console, options: ConsoleOptions) -> list[int]:
        if not console.is_terminal:
            widths = self._complete_widths(console, options)
            if widths is not None:
                return widths
        return super()._calculate_column_widths(console, options)

    def _complete_widths(self, console: Console, options: ConsoleOptions) -> list[int] | None:
        """Column widths (with padding) that cut nothing within ``options.max_width``, if any."""
        wide = options.update_width(_UNBOUNDED)
        ranges = [self._measure_column(console, wide, column) for column in self.columns]
        widths = [r.maximum for r in ranges]
        room = options.max_width
        if sum(widths) <= room:
            return widths
        text = [i for i, c in enumerate(self.columns) if c.header in self.text_columns]
        spare = room - sum(w for i, w in enumerate(widths) if i not in text)
        spare -= sum(ranges[i].minimum for i in text)
        if spare < 0:
            return None
        for i in text:  # each text column from its longest word toward its full width
            widths[i] = ranges[i].minimum
        hungry = [i for i in text if widths[i] < ranges[i].maximum]
        while spare > 0 and hungry:
            share = max(1, spare // len(hungry))
            for i in list(hungry):
                give = min(share, ranges[i].maximum - widths[i], spare)
                widths[i] += give
                spare -= give
                if widths[i] >= ranges[i].maximum:
                    hungry.remove(i)
        return widths

    def _records(self) -> RenderableType:
        """The rows as records, for a width the table cannot fit whole."""
        headers = [Text(str(c.header)) for c in self.columns]
        label_width = max(cell_len(h.plain) for h in headers)
        cells = [list(c.cells) for c in self.columns]
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(str(self.title), style="bold"))
        rows = self.row_count
        for n in range(rows):
            grid = Table.grid(padding=(0, 2))
            grid.add_column(width=label_width, no_wrap=True, style="bold")
            grid.add_column(overflow="fold")
            for header, column_cells in zip(headers, cells, strict=True):
                grid.add_row(header, column_cells[n])
            parts.extend([Text(f"-[ {n + 1} of {rows} ]-", style="dim"), grid])
        return Group(*parts)


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


class Clipped:
    """A table value cut for the terminal it is shown on, decided when it is rendered.

    On a terminal: one line, at most ``limit`` characters, an ellipsis where it was cut.
    Elsewhere: all of it, or for free text (``off_tty_limit``) at most that many characters
    and a marker saying how many more there were.
    """

    __slots__ = ("limit", "off_tty_limit", "text")

    def __init__(self, text: str, limit: int, off_tty_limit: int | None = None) -> None:
        self.text = text
        self.limit = limit
        self.off_tty_limit = off_tty_limit

    def for_console(self, console: Console) -> Text:
        text, limit = self.text, self.limit
        if console.is_terminal:
            return Text(text if len(text) <= limit else text[: limit - 1] + "…")
        limit = self.off_tty_limit or len(text)
        if len(text) <= limit:
            return Text(text)
        return Text(text[:limit] + TRUNCATION_MARKER.format(n=len(text) - limit))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.for_console(console)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.for_console(console))

    def __str__(self) -> str:
        return self.text


def clip(value: Any, limit: int) -> Clipped:
    """A name, type or path on one line: cut to ``limit`` on a terminal, whole elsewhere."""
    return Clipped(_one_line(value), limit)


def excerpt(value: Any, limit: int) -> Clipped:
    """Free text on one line: cut to ``limit`` on a terminal, to a generous bound elsewhere."""
    return Clipped(_one_line(value), limit, OFF_TTY_TEXT_LIMIT)


def _one_line(value: Any) -> str:
    return NONE if value is None else " ".join(str(value).split())


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


def traced_json(row: Any, settings: Settings) -> dict[str, Any]:
    """A row with a ``trace_id`` as ``--json`` shows it: its fields, then ``trace_url``
    (None without ``OTEL_DIAG_TRACE_URL_TEMPLATE``)."""
    return {**to_json(row), "trace_url": settings.trace_url(row.trace_id)}


def run_json(run: Run, settings: Settings) -> dict[str, Any]:
    """A run as ``--json`` shows it: its fields, ``duration_ms`` and ``trace_url``."""
    duration = run.duration_ms
    return {
        **to_json(run),
        "duration_ms": None if duration is None else round(duration, 3),
        "trace_url": settings.trace_url(run.trace_id),
    }
