"""``otel-diag cost``: where the LLM money went, by model, by agent and by day, and how
much of it failure cost (failed runs, retried attempts; by error category and by agent).

Tokens of models litellm has no price for are listed apart (never counted as $0), and
calls whose reported cost disagrees with the cost computed from the price map are shown
with both figures, so a wrong price or a wrong report is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from otel_diag.cli import render
from otel_diag.cli.common import store_options
from otel_diag.cli.options import json_option, since_option
from otel_diag.cli.session import window_report
from otel_diag.report_rows import AgentCost, DayCost, ModelCost
from otel_diag.rows import FailureCost, Spend, to_json

_USAGE = ("calls", "input tokens", "output tokens", "cost")


@click.command("cost")
@store_options
@since_option("7d", "Window start: 24h, 7d or an ISO time.")
@json_option
def cost_command(
    database_url: str | None, tenant: str | None, since: datetime, as_json: bool
) -> None:
    """Cost analysis over --since: by model, agent and day; unpriced tokens; mismatches."""
    settings, window, (cost, failures) = window_report(
        database_url,
        tenant,
        since,
        lambda store, start, end: (
            store.cost_breakdown(start, end),
            store.failure_cost(start, end),
        ),
    )
    if as_json:
        render.emit_json({**window, **to_json(cost), "failures": to_json(failures)})
        return
    out = render.console()
    total = cost.total
    out.print(
        f"[bold]LLM cost since {render.when(since)} UTC ({settings.tenant})[/bold]: "
        f"{render.money(total.cost_usd)} over {render.count(total.calls)} calls, "
        f"{render.count(total.input_tokens)} in / {render.count(total.output_tokens)} "
        "out tokens"
        + (
            f"; {render.count(total.unpriced_tokens)} tokens without a price"
            if total.unpriced_tokens
            else ""
        )
    )
    if not total.calls:
        return
    print_failure_cost(out, failures, tables=True)
    out.print(_usage_table("By model", "model", [(m.model, m) for m in cost.by_model]))
    by_agent = [(a.agent, a) for a in cost.by_agent]
    out.print(_usage_table("By agent (runs started in the window)", "agent", by_agent))
    out.print(_usage_table("By day (UTC)", "day", [(d.day, d) for d in cost.by_day]))
    if cost.unpriced:
        tbl = render.table(
            "Unpriced (model not in litellm's price map)",
            "model",
            "calls",
            "input tokens",
            "output tokens",
            right=_USAGE,
        )
        for u in cost.unpriced:
            tbl.add_row(
                u.model,
                render.count(u.calls),
                render.count(u.input_tokens),
                render.count(u.output_tokens),
            )
        out.print(tbl)
    mismatches = cost.mismatches
    if mismatches.by_model:
        tbl = render.table(
            "Reported vs computed cost disagree",
            "model",
            "calls",
            "reported",
            "computed",
            right=("calls", "reported", "computed"),
        )
        for m in mismatches.by_model:
            tbl.add_row(
                m.model,
                render.count(m.steps),
                render.money(m.reported_usd),
                render.money(m.computed_usd),
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
        for e in mismatches.examples:
            ex.add_row(
                render.short_id(e.run_id),
                render.clip(e.step_name, 32),
                e.model or render.NONE,
                render.count((e.input_tokens or 0) + (e.output_tokens or 0)),
                render.money(e.reported_usd),
                render.money(e.computed_usd),
            )
        out.print(ex)


def _spent(spend: Spend, what: str) -> str:
    tokens = spend.input_tokens + spend.output_tokens
    money = render.money(spend.cost_usd)
    return f"{render.count(spend.count)} {what}, {render.count(tokens)} tokens, {money}"


_FAILURE_COLUMNS = (
    "failed runs",
    "tokens",
    "cost",
    "retried attempts",
    "retry tokens",
    "retry cost",
)


def print_failure_cost(out: Any, failures: FailureCost, *, tables: bool) -> None:
    """The cost of failure: one line, then (``tables``) by error category and by agent."""
    out.print(
        f"[bold]Spent on failure[/bold]: {_spent(failures.failed_runs, 'failed runs')}; "
        f"{_spent(failures.retried_attempts, 'retried attempts')}"
    )
    views = (("category", failures.by_category), ("agent", failures.by_agent)) if tables else ()
    for label, rows in views:
        if not rows:
            continue
        tbl = render.table(
            f"Cost of failure by {label}", label, *_FAILURE_COLUMNS, right=_FAILURE_COLUMNS
        )
        for row in rows:
            runs, tries = row.failed_runs, row.retried_attempts
            tbl.add_row(
                row.name,
                render.count(runs.count),
                render.count(runs.input_tokens + runs.output_tokens),
                render.money(runs.cost_usd),
                render.count(tries.count),
                render.count(tries.input_tokens + tries.output_tokens),
                render.money(tries.cost_usd),
            )
        out.print(tbl)


def _usage_table(
    title: str, label: str, rows: Sequence[tuple[str, ModelCost | AgentCost | DayCost]]
) -> Any:
    tbl = render.table(title, label, *_USAGE, "share", right=(*_USAGE, "share"))
    grand = sum(r.cost_usd for _, r in rows) or 0.0
    for name, r in rows:
        unpriced = r.unpriced_tokens and not r.cost_usd
        tbl.add_row(
            name,
            render.count(r.calls),
            render.count(r.input_tokens),
            render.count(r.output_tokens),
            render.money(None, unpriced=True) if unpriced else render.money(r.cost_usd),
            render.percent(r.cost_usd / grand) if grand else render.NONE,
        )
    return tbl
