"""``otel-diag cost``: where the LLM money went, by model, by agent and by day, and how
much of it failure cost (failed runs, retried attempts; by error category and by agent).

Tokens of models litellm has no price for are listed apart (never counted as $0), and
calls whose reported cost disagrees with the cost computed from the price map are shown
with both figures, so a wrong price or a wrong report is visible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from otel_diag.cli import render
from otel_diag.cli.common import store_options
from otel_diag.cli.options import json_option, since_option
from otel_diag.cli.session import window_report
from otel_diag.rows import to_json

_USAGE = ("calls", "input tokens", "output tokens", "cost")


@click.command("cost")
@store_options
@since_option("7d", "Window start: 24h, 7d or an ISO time.")
@json_option
def cost_command(
    database_url: str | None, tenant: str | None, since: datetime, as_json: bool
) -> None:
    """Cost analysis over --since: by model, agent and day; unpriced tokens; mismatches."""
    settings, data = window_report(
        database_url,
        tenant,
        since,
        lambda store, start, end: {
            **store.cost_breakdown(start, end),
            "failures": to_json(store.failure_cost(start, end)),
        },
    )
    if as_json:
        render.emit_json(data)
        return
    out = render.console()
    total = data["total"]
    out.print(
        f"[bold]LLM cost since {render.when(since)} UTC ({settings.tenant})[/bold]: "
        f"{render.money(total['cost_usd'])} over {render.count(total['calls'])} calls, "
        f"{render.count(total['input_tokens'])} in / {render.count(total['output_tokens'])} "
        "out tokens"
        + (
            f"; {render.count(total['unpriced_tokens'])} tokens without a price"
            if total["unpriced_tokens"]
            else ""
        )
    )
    if not total["calls"]:
        return
    print_failure_cost(out, data["failures"], tables=True)
    out.print(_usage_table("By model", "model", data["by_model"]))
    out.print(_usage_table("By agent (runs started in the window)", "agent", data["by_agent"]))
    out.print(_usage_table("By day (UTC)", "day", data["by_day"]))
    if data["unpriced"]:
        tbl = render.table(
            "Unpriced (model not in litellm's price map)",
            "model",
            "calls",
            "input tokens",
            "output tokens",
            right=_USAGE,
        )
        for u in data["unpriced"]:
            tbl.add_row(
                u["model"],
                render.count(u["calls"]),
                render.count(u["input_tokens"]),
                render.count(u["output_tokens"]),
            )
        out.print(tbl)
    mismatches = data["mismatches"]
    if mismatches["by_model"]:
        tbl = render.table(
            "Reported vs computed cost disagree",
            "model",
            "calls",
            "reported",
            "computed",
            right=("calls", "reported", "computed"),
        )
        for m in mismatches["by_model"]:
            tbl.add_row(
                m["model"],
                render.count(m["steps"]),
                render.money(m["reported_usd"]),
                render.money(m["computed_usd"]),
            )
        out.print(tbl)
        ex = render.table(
            "Recent examples",
            "run",
            "step",
            "model",
            "tokens",
            "reported",
            "computed",
            right=("tokens", "reported", "computed"),
        )
        for e in mismatches["examples"]:
            ex.add_row(
                render.short_id(e["run_id"]),
                render.clip(e["step_name"], 32),
                e["model"] or render.NONE,
                render.count((e["input_tokens"] or 0) + (e["output_tokens"] or 0)),
                render.money(e["reported_usd"]),
                render.money(e["computed_usd"]),
            )
        out.print(ex)


def _spent(spend: dict[str, Any], what: str) -> str:
    tokens = spend["input_tokens"] + spend["output_tokens"]
    return (
        f"{render.count(spend['count'])} {what}, {render.count(tokens)} tokens, "
        f"{render.money(spend['cost_usd'])}"
    )


_FAILURE_COLUMNS = (
    "failed runs",
    "tokens",
    "cost",
    "retried attempts",
    "retry tokens",
    "retry cost",
)


def print_failure_cost(out: Any, failures: dict[str, Any], *, tables: bool) -> None:
    """The cost of failure (``FailureCost`` as JSON): one line, then (``tables``) by error
    category and by agent. ``cost`` prints the tables, ``stats`` the line and the agents."""
    out.print(
        f"[bold]Spent on failure[/bold]: {_spent(failures['failed_runs'], 'failed runs')}; "
        f"{_spent(failures['retried_attempts'], 'retried attempts')}"
    )
    views = (("category", "by_category"), ("agent", "by_agent")) if tables else ()
    for label, key in views:
        rows = failures[key]
        if not rows:
            continue
        tbl = render.table(
            f"Cost of failure by {label}", label, *_FAILURE_COLUMNS, right=_FAILURE_COLUMNS
        )
        for row in rows:
            runs, tries = row["failed_runs"], row["retried_attempts"]
            tbl.add_row(
                row["name"],
                render.count(runs["count"]),
                render.count(runs["input_tokens"] + runs["output_tokens"]),
                render.money(runs["cost_usd"]),
                render.count(tries["count"]),
                render.count(tries["input_tokens"] + tries["output_tokens"]),
                render.money(tries["cost_usd"]),
            )
        out.print(tbl)


def _usage_table(title: str, label: str, rows: list[dict[str, Any]]) -> Any:
    tbl = render.table(title, label, *_USAGE, "share", right=(*_USAGE, "share"))
    grand = sum(r["cost_usd"] for r in rows) or 0.0
    for r in rows:
        unpriced = r["unpriced_tokens"] and not r["cost_usd"]
        tbl.add_row(
            r[label],
            render.count(r["calls"]),
            render.count(r["input_tokens"]),
            render.count(r["output_tokens"]),
            render.money(None, unpriced=True) if unpriced else render.money(r["cost_usd"]),
            render.percent(r["cost_usd"] / grand) if grand else render.NONE,
        )
    return tbl
