"""``otel-diag stats``: how runs went over a window, overall and agent by agent.

Per agent: runs, failure rate (failed / finished), p50 and p95 run duration, tokens and
cost, so a regression in one agent stands out against the others; then what failure cost
(failed runs and retried attempts, by error category and by agent).
"""

from __future__ import annotations

from datetime import datetime

import click

from otel_diag.cli import render
from otel_diag.cli.common import store_options
from otel_diag.cli.cost import print_failure_cost
from otel_diag.cli.options import json_option, since_option
from otel_diag.cli.session import window_report
from otel_diag.rows import to_json


@click.command("stats")
@store_options
@since_option("24h", "Window start: 24h, 7d or an ISO time.")
@json_option
def stats_command(
    database_url: str | None, tenant: str | None, since: datetime, as_json: bool
) -> None:
    """Totals and per-agent comparison: failure rate, p50/p95 duration, tokens, cost."""
    settings, window, (stats, failures) = window_report(
        database_url,
        tenant,
        since,
        lambda store, start, end: (store.run_stats(start, end), store.failure_cost(start, end)),
    )
    if as_json:
        render.emit_json({**window, **to_json(stats), "failure_cost": to_json(failures)})
        return
    out = render.console()
    t = stats.totals
    out.print(
        f"[bold]Runs since {render.when(since)} UTC ({settings.tenant})[/bold]: "
        f"{render.count(t.runs)} runs, {render.count(t.failed)} failed "
        f"({render.percent(t.failure_rate)}), {render.count(t.running)} running, "
        f"{render.count(t.errors)} errors, "
        f"{render.count(t.input_tokens + t.output_tokens)} tokens, "
        f"{render.money(t.cost_usd)}"
        + (f" (+{render.count(t.unpriced_tokens)} unpriced tokens)" if t.unpriced_tokens else "")
    )
    if not stats.agents:
        return
    numbers = (
        "runs",
        "failed",
        "failure rate",
        "p50",
        "p95",
        "llm",
        "tools",
        "tokens",
        "cost",
        "errors",
    )
    tbl = render.table("Per agent", "agent", *numbers, right=numbers)
    for a in stats.agents:
        tbl.add_row(
            a.agent,
            render.count(a.runs),
            render.count(a.failed),
            render.percent(a.failure_rate),
            render.millis(a.p50_ms),
            render.millis(a.p95_ms),
            render.count(a.llm_calls),
            render.count(a.tool_calls),
            render.count(a.input_tokens + a.output_tokens),
            render.money(a.cost_usd, unpriced=bool(a.unpriced_tokens)),
            render.count(a.errors),
        )
    out.print(tbl)
    if stats.errors_by_category:
        cats = render.table(
            "Errors by source / category",
            "source",
            "category",
            "errors",
            "runs",
            right=("errors", "runs"),
        )
        for c in stats.errors_by_category:
            cats.add_row(c.source, c.category, render.count(c.errors), render.count(c.runs))
        out.print(cats)
    print_failure_cost(out, failures, tables=True)
