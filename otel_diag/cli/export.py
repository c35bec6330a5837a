"""``otel-diag export``: errors, runs or steps to CSV, JSON or JSON Lines, streamed.

Rows go from a streaming cursor straight to the file in batches, so a million rows never
sit in memory; CSV from PostgreSQL is rendered by the server itself (``COPY ... TO
STDOUT``) and only copied through. The file is written next to its destination and
renamed into place at the end, so a failed export never leaves half a file behind. On a
terminal a progress bar shows rows (or bytes) written; a one-line summary with the rate
ends every export.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, get_args

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from otel_diag.cli import render
from otel_diag.cli.common import fail, store_options
from otel_diag.cli.options import SINCE, json_option, run_filter_options, since_option
from otel_diag.cli.session import reading, resolve_or_fail
from otel_diag.store.port import ExportFilter, ExportLayout, ExportTable, TenantStore

Batches = Iterator[Sequence[Sequence[Any]]]
Advance = Callable[[int], None]


class OutputError(Exception):
    """Writing the export's file failed (a full disk, a closed pipe): told apart from the
    database failing, and reported as ``cannot write OUTPUT``."""


@click.command("export")
@store_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    default=None,
    help="File format (default: from the --output suffix, else csv).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write ('-' for stdout).",
)
@click.option(
    "--table",
    "table_name",
    type=click.Choice(get_args(ExportTable)),
    default="errors",
    show_default=True,
    help="What to export.",
)
@run_filter_options
@since_option(None, "Only rows since (24h, 7d or an ISO time).")
@click.option("--until", type=SINCE, default=None, help="Only rows before this time.")
@click.option("--run", "run_ref", default=None, help="Only this run (id, prefix or trace id).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many rows.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when stderr is a terminal).",
)
@json_option
def export_command(
    database_url: str | None,
    tenant: str | None,
    fmt: str | None,
    output: str,
    table_name: ExportTable,
    status: str | None,
    agent: str | None,
    since: datetime | None,
    until: datetime | None,
    run_ref: str | None,
    limit: int | None,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Export errors (or runs / steps) matching the filters to a CSV, JSON or JSONL file."""
    fmt = fmt or _format_from_suffix(output)
    show_progress = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter()
    try:
        with reading(database_url, tenant) as (settings, store):
            run_id = resolve_or_fail(store, run_ref) if run_ref else None
            flt = ExportFilter(
                since=since, until=until, run_id=run_id, status=status, agent=agent, limit=limit
            )
            template = settings.trace_url_template
            with _destination(output) as stream:
                written = None
                if fmt == "csv":  # the database may render the CSV itself (COPY)
                    written = _database_csv(store, table_name, flt, template, stream, show_progress)
                if written is None:
                    layout = store.export_layout(table_name, trace_url=bool(template))
                    total = store.export_count(table_name, flt) if show_progress else None
                    batches = store.export_batches(table_name, flt, trace_url_template=template)
                    with _progress(show_progress, total) as advance:
                        written = _WRITERS[fmt](stream, layout, batches, advance)
    except OutputError as exc:
        fail(f"cannot write {output}: {exc}")
    seconds = time.perf_counter() - started
    rate = written / seconds if seconds > 0 else 0.0
    summary = {
        "table": table_name,
        "format": fmt,
        "output": output,
        "rows": written,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rate),
    }
    if as_json and output != "-":
        render.emit_json(summary)
    else:
        click.echo(
            f"exported {written:,} {table_name} rows to {output} as {fmt} in "
            f"{seconds:.2f}s ({rate:,.0f} rows/s)",
            err=True,
        )


def _format_from_suffix(output: str) -> str:
    suffix = Path(output).suffix.lower().lstrip(".")
    return {"json": "json", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "csv")


class _Output:
    """The export's destination; a write that fails raises :class:`OutputError`."""

    __slots__ = ("_stream",)

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        try:
            self._stream.write(text)
        except OSError as exc:
            raise OutputError(str(exc)) from exc

    def write_bytes(self, data: bytes) -> None:
        """Bytes past the text layer (flush first): the CSV a database renders itself."""
        try:
            self._stream.buffer.write(data)
        except OSError as exc:
            raise OutputError(str(exc)) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(str(exc)) from exc


@contextmanager
def _destination(output: str) -> Iterator[_Output]:
    """The open output: stdout for '-', else a temp file renamed into place on success."""
    if output == "-":
        out = _Output(sys.stdout)
        yield out
        out.flush()
        return
    target = Path(output)
    if not target.parent.is_dir():
        fail(f"cannot write {output}: directory {target.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise OutputError(str(exc)) from exc
    stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
    try:
        try:
            out = _Output(stream)
            yield out
            out.flush()
        except BaseException:
            with suppress(OSError):  # the buffer may fail to flush again: the first error says it
                stream.close()
            raise
        try:
            stream.close()
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private; a finished export is not
            os.replace(tmp, target)
        except OSError as exc:
            raise OutputError(str(exc)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _database_csv(
    store: TenantStore,
    table: ExportTable,
    flt: ExportFilter,
    template: str | None,
    out: _Output,
    show_progress: bool,
) -> int | None:
    """The CSV as the database renders it (PostgreSQL's COPY), progress in bytes; None
    when this store cannot, and then nothing was written."""
    out.flush()
    with ExitStack() as stack:
        advance: Advance | None = None

        def write(chunk: bytes) -> None:
            nonlocal advance
            if advance is None:  # the bar appears only when the database writes
                advance = stack.enter_context(_progress(show_progress, None, unit="bytes"))
            out.write_bytes(chunk)
            advance(len(chunk))

        return store.export_csv(table, flt, write, trace_url_template=template)


@contextmanager
def _progress(
    enabled: bool, total: int | None, unit: str = "rows"
) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on stderr: rows of ``total``, or bytes written."""
    if not enabled:
        yield lambda _n: None
        return
    shown: list[Any] = [TextColumn("exporting"), BarColumn()]
    if unit == "bytes":
        shown += [DownloadColumn(), TransferSpeedColumn()]
    else:
        shown += [MofNCompleteColumn(), TimeRemainingColumn()]
    bar = Progress(*shown, console=render.console(stderr=True), transient=True)
    with bar:
        task = bar.add_task("export", total=total)
        yield lambda n: bar.advance(task, n)


def _csv_field(value: Any) -> str:
    """One CSV field: text always quoted (quotes doubled), NULL empty, numbers as Python
    prints them. Several times faster than ``csv.writer`` on long stack traces."""
    if value is None:
        return ""
    if type(value) is str:
        return '"' + value.replace('"', '""') + '"'
    return repr(value)


def _write_csv(out: _Output, layout: ExportLayout, batches: Batches, advance: Advance) -> int:
    out.write(",".join(layout.columns) + "\n")
    written = 0
    field = _csv_field
    for batch in batches:
        out.write("".join([",".join([field(v) for v in row]) + "\n" for row in batch]))
        written += len(batch)
        advance(len(batch))
    return written


def _dicts(layout: ExportLayout, batches: Batches, advance: Advance) -> Iterator[str]:
    names = layout.columns
    json_at = [i for i, n in enumerate(names) if n in layout.json_columns]
    for batch in batches:
        for row in batch:
            item = dict(zip(names, row, strict=True))
            for i in json_at:
                if row[i] is not None:
                    item[names[i]] = json.loads(row[i])
            yield json.dumps(item, ensure_ascii=False)
        advance(len(batch))


def _write_jsonl(out: _Output, layout: ExportLayout, batches: Batches, advance: Advance) -> int:
    written = 0
    for line in _dicts(layout, batches, advance):
        out.write(line + "\n")
        written += 1
    return written


def _write_json(out: _Output, layout: ExportLayout, batches: Batches, advance: Advance) -> int:
    written = 0
    out.write("[")
    for line in _dicts(layout, batches, advance):
        out.write(("\n" if written == 0 else ",\n") + line)
        written += 1
    out.write("\n]\n" if written else "]\n")
    return written


_WRITERS: dict[str, Callable[[_Output, ExportLayout, Batches, Advance], int]] = {
    "csv": _write_csv,
    "jsonl": _write_jsonl,
    "json": _write_json,
}
