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
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

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
from otel_diag.cli.common import fail, handle_errors, store_options
from otel_diag.cli.options import SINCE, json_option, run_filter_options, since_option
from otel_diag.cli.session import reading, resolve_or_fail
from otel_diag.store.sql.file_export import (
    EXPORTS,
    JSON_COLUMNS,
    ExportFilter,
    can_copy,
    columns,
    copy_csv,
    count_rows,
    iter_batches,
)

Writer = Callable[[Sequence[Sequence[Any]]], None]


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
    type=click.Choice(sorted(EXPORTS)),
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
@handle_errors
def export_command(
    database_url: str | None,
    tenant: str | None,
    fmt: str | None,
    output: str,
    table_name: str,
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
    with reading(database_url, tenant) as (settings, conn):
        run_id = resolve_or_fail(conn, run_ref) if run_ref else None
        flt = ExportFilter(
            since=since, until=until, run_id=run_id, status=status, agent=agent, limit=limit
        )
        template = settings.trace_url_template
        names = list(columns(table_name, trace_url=bool(template)))
        with _destination(output) as stream:
            if fmt == "csv" and can_copy(conn):
                # PostgreSQL renders the CSV itself; progress is in bytes.
                stream.flush()
                binary = stream.buffer
                with _progress(show_progress, None, unit="bytes") as advance:

                    def write(chunk: bytes) -> None:
                        binary.write(chunk)
                        advance(len(chunk))

                    written = copy_csv(conn, table_name, flt, write, trace_url_template=template)
            else:
                total = count_rows(conn, table_name, flt) if show_progress else None
                batches = iter_batches(conn, table_name, flt, trace_url_template=template)
                with _progress(show_progress, total) as advance:
                    written = _WRITERS[fmt](stream, names, batches, advance)
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


@contextmanager
def _destination(output: str) -> Iterator[TextIO]:
    """The open output: stdout for '-', else a temp file renamed into place on success."""
    if output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(output)
    if not target.parent.is_dir():
        fail(f"cannot write {output}: directory {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private; a finished export is not
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _write_csv(stream: TextIO, names: list[str], batches: Any, advance: Any) -> int:
    stream.write(",".join(names) + "\n")
    written = 0
    field = _csv_field
    for batch in batches:
        stream.write("".join([",".join([field(v) for v in row]) + "\n" for row in batch]))
        written += len(batch)
        advance(len(batch))
    return written


def _dicts(names: list[str], batches: Any, advance: Any) -> Iterator[str]:
    json_at = [i for i, n in enumerate(names) if n in JSON_COLUMNS]
    for batch in batches:
        for row in batch:
            item = dict(zip(names, row, strict=True))
            for i in json_at:
                if row[i] is not None:
                    item[names[i]] = json.loads(row[i])
            yield json.dumps(item, ensure_ascii=False)
        advance(len(batch))


def _write_jsonl(stream: TextIO, names: list[str], batches: Any, advance: Any) -> int:
    written = 0
    for line in _dicts(names, batches, advance):
        stream.write(line + "\n")
        written += 1
    return written


def _write_json(stream: TextIO, names: list[str], batches: Any, advance: Any) -> int:
    written = 0
    stream.write("[")
    for line in _dicts(names, batches, advance):
        stream.write(("\n" if written == 0 else ",\n") + line)
        written += 1
    stream.write("\n]\n" if written else "]\n")
    return written


_WRITERS: dict[str, Callable[[TextIO, list[str], Any, Any], int]] = {
    "csv": _write_csv,
    "jsonl": _write_jsonl,
    "json": _write_json,
}
