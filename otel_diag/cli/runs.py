"""``otel-diag runs``: the latest runs, newest first, with status, cost and errors.

The short id in the first column is a unique prefix: paste it into ``otel-diag errors``.
"""

from __future__ import annotations

from datetime import datetime

import click

from otel_diag.cli import render
from otel_diag.cli.common import store_options
from otel_diag.cli.options import json_option, run_filter_options, since_option
from otel_diag.cli.session import reading


@click.command("runs")
@store_options
@run_filter_options
@since_option(None, "Only runs started since (24h, 7d or an ISO time).")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@json_option
def runs_command(
    database_url: str | None,
    tenant: str | None,
    status: str | None,
    agent: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs (newest first) with status, tokens, cost and error count."""
    with reading(database_url, tenant) as (settings, store):
        rows = store.runs(status=status, since=since, agent=agent, limit=limit)
    if as_json:
        render.emit_json(
            {
                "tenant": settings.tenant,
                "count": len(rows),
                "runs": [render.run_json(run, settings) for run in rows],
            }
        )
        return
    out = render.console()
    if not rows:
        out.print(
            "No runs yet. Run an app under `opentelemetry-instrument --traces_exporter "
            "otel_diag` or send OTLP to `otel-diag serve`."
        )
        return
    columns = [
        "run",
        "started (UTC)",
        "name",
        "agent",
        "status",
        "duration",
        "llm",
        "tools",
        "tokens",
        "cost",
        "errors",
        "diagnosis",
    ]
    numbers = ("duration", "llm", "tools", "tokens", "cost", "errors")
    tbl = render.table(f"Runs ({settings.tenant})", *columns, right=numbers, whole=("run",))
    links = [(render.short_id(run.id), settings.trace_url(run.trace_id)) for run in rows]
    for run, (short, url) in zip(rows, links, strict=True):
        tbl.add_row(
            render.linked(short, url),
            render.when(run.started_at),
            render.clip(run.name, 40),
            render.clip(run.agent_name, 24),
            render.status(run.status),
            render.millis(run.duration_ms),
            render.count(run.llm_calls),
            render.count(run.tool_calls),
            render.count(run.input_tokens + run.output_tokens),
            render.money(run.cost_usd, unpriced=bool(run.unpriced_tokens)),
            render.count(run.error_count),
            run.diagnosis_state or render.NONE,
        )
    out.print(tbl)
    render.print_trace_links(out, links)
