"""``otel-diag cost``: where the LLM money went, by model, by agent and by day.

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
        database_url, tenant, since, lambda store, start, end: store.cost_breakdown(start, end)
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
