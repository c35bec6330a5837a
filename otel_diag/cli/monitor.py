"""``otel-diag monitor``: a live terminal dashboard of runs, failures, spend and diagnoses.

Every ``--interval`` seconds it re-reads the last ``--window`` from the database (so it
works against the store a ``serve`` or an in-process exporter is filling) and redraws with
rich Live. ``--once`` prints one frame and exits (scripts, tests); without a terminal it
prints a frame per refresh instead of redrawing, so it can be piped or logged.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.text import Text

from otel_diag.cli import render
from otel_diag.cli.common import database_failures, open_store, settings_from, store_options
from otel_diag.cli.options import DURATION, json_option
from otel_diag.report_rows import MonitorFrame
from otel_diag.rows import to_json
from otel_diag.timewindow import format_duration

MAX_SPARK_MINUTES = 60


@click.command("monitor")
@store_options
@click.option(
    "--window",
    type=DURATION,
    default="15m",
    show_default=True,
    help="How far back the figures look (e.g. 5m, 1h).",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option(
    "--count",
    "frames",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many refreshes.",
)
@json_option
def monitor_command(
    database_url: str | None,
    tenant: str | None,
    window: timedelta,
    interval: float,
    once: bool,
    frames: int | None,
    as_json: bool,
) -> None:
    """Live dashboard: runs/min, failure rate, cost/min by model, latest errors and diagnoses."""
    settings = settings_from(database_url, tenant)
    storage, store = open_store(settings)
    limit = 1 if once else frames

    def snapshot() -> MonitorFrame:
        with database_failures(storage):
            return store.monitor_snapshot(window, datetime.now(UTC))

    def as_json_object(data: MonitorFrame) -> dict[str, Any]:
        errors = [
            {**to_json(e), "trace_url": settings.trace_url(e.trace_id)} for e in data.latest_errors
        ]
        return {**to_json(data), "tenant": settings.tenant, "latest_errors": errors}

    out = render.console()
    shown = 0
    try:
        if as_json or limit == 1 or not out.is_terminal:
            while True:
                data = snapshot()
                if as_json and limit == 1:
                    render.emit_json(as_json_object(data))
                elif as_json:  # one JSON object per line per refresh
                    click.echo(json.dumps(as_json_object(data), default=str))
                else:
                    out.print(frame(data, settings.tenant, window))
                shown += 1
                if limit is not None and shown >= limit:
                    return
                time.sleep(interval)
        first = frame(snapshot(), settings.tenant, window)
        with Live(first, console=out, auto_refresh=False, screen=False) as live:
            shown = 1
            while limit is None or shown < limit:
                time.sleep(interval)
                live.update(frame(snapshot(), settings.tenant, window), refresh=True)
                shown += 1
    except KeyboardInterrupt:
        return
    finally:
        storage.dispose()


def frame(data: MonitorFrame, tenant: str, window: timedelta) -> Group:
    """One dashboard frame from a :meth:`~otel_diag.store.port.TenantStore.monitor_snapshot`."""
    spark = render.sparkline(_per_minute(data, window))
    head = Text.assemble(
        ("otel-diag monitor", "bold"),
        f"  tenant {tenant}  ·  last {format_duration(window)}  ·  {render.when(data.now)} UTC",
    )
    figures = render.table(
        None,
        "runs/min",
        "runs",
        "failed",
        "failure rate",
        "running",
        "cost",
        "cost/min",
        "pending diagnoses",
        "runs per minute",
        right=(
            "runs/min",
            "runs",
            "failed",
            "failure rate",
            "running",
            "cost",
            "cost/min",
            "pending diagnoses",
        ),
    )
    figures.add_row(
        f"{data.runs_per_minute:.2f}",
        render.count(data.runs),
        render.count(data.failed),
        render.percent(data.failure_rate),
        render.count(data.running),
        render.money(data.cost_usd),
        render.money(data.cost_per_minute),
        render.count(data.pending_diagnoses),
        spark or render.NONE,
    )
    parts: list[Any] = [head, figures]
    models = render.table(
        "Cost per minute by model",
        "model",
        "calls",
        "tokens",
        "cost",
        "cost/min",
        right=("calls", "tokens", "cost", "cost/min"),
    )
    for m in data.models:
        unpriced = m.unpriced_calls == m.calls
        models.add_row(
            m.model,
            render.count(m.calls),
            render.count(m.tokens),
            render.money(None, unpriced=True) if unpriced else render.money(m.cost_usd),
            render.NONE if unpriced else render.money(m.cost_per_minute),
        )
    if data.models:
        parts.append(models)
    errors = render.table(
        "Latest errors",
        "time (UTC)",
        "run",
        "step",
        "source/category",
        "type",
        "message",
        text=("message",),
    )
    for e in data.latest_errors:
        errors.add_row(
            render.when(e.created_at),
            render.short_id(e.run_id),
            render.clip(e.step_name, 28),
            f"{e.source}/{e.error_category}",
            render.clip(e.error_type, 32),
            render.excerpt(e.error_message, 90),
        )
    parts.append(errors if data.latest_errors else Text("No errors yet."))
    diagnoses = render.table(
        "Latest diagnoses",
        "time (UTC)",
        "run",
        "by",
        "confidence",
        "resume at",
        "root cause",
        right=("confidence",),
        text=("root cause",),
    )
    for d in data.latest_diagnoses:
        diagnoses.add_row(
            render.when(d.created_at),
            render.short_id(d.run_id),
            d.llm_provider,
            f"{d.confidence_score:.2f}",
            render.clip(d.resume_step, 24),
            render.excerpt(d.root_cause_analysis, 90),
        )
    parts.append(diagnoses if data.latest_diagnoses else Text("No diagnoses yet."))
    return Group(*parts)


def _per_minute(data: MonitorFrame, window: timedelta) -> list[float]:
    """Runs per minute over the window (at most the last hour), zero-filled."""
    minutes = max(1, min(MAX_SPARK_MINUTES, int(window.total_seconds() // 60)))
    counts = {row.minute: row.runs for row in data.per_minute}
    now = data.now.astimezone(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    keys = [(start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M") for i in range(minutes)]
    return [float(counts.get(k, 0)) for k in keys]
