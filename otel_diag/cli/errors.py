"""``otel-diag errors RUN``: what went wrong in one run, and the diagnosis if there is one;
``otel-diag errors --groups``: the same errors across runs, grouped by fingerprint.

RUN is a full run UUID, a unique prefix of one (as ``otel-diag runs`` prints it), or the
run's trace id. Errors are listed in the order they happened; repeated shapes (same
fingerprint) are summarised so a retry storm reads as one problem with a count, and the
spans an exception propagated through are shown under the step where it was raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from otel_diag.cli import render
from otel_diag.cli.common import fail, store_options
from otel_diag.cli.options import json_option, since_option
from otel_diag.cli.session import reading, resolve_or_fail
from otel_diag.diagnosis.context import compact_stack
from otel_diag.rows import ErrorRow, ErrorSummary, Report, Run, to_json


@click.command("errors")
@click.argument("run", required=False)
@store_options
@click.option("--stack", is_flag=True, help="Show each error's compacted stack trace.")
@click.option(
    "--groups", is_flag=True, help="Show error groups across runs instead of one run's errors."
)
@since_option("7d", "With --groups: window start (24h, 7d or an ISO time).")
@click.option("--service", default=None, help="With --groups: only runs of this service.")
@click.option("--agent", default=None, help="With --groups: only runs of this agent.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@json_option
def errors_command(
    run: str | None,
    database_url: str | None,
    tenant: str | None,
    stack: bool,
    groups: bool,
    since: datetime,
    service: str | None,
    agent: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show the errors of RUN (run id, unique prefix, or trace id), or --groups across runs."""
    if groups:
        _groups(database_url, tenant, since, service, agent, limit, as_json)
        return
    if run is None:
        raise click.UsageError("give a RUN, or --groups for error groups across runs")
    with reading(database_url, tenant) as (settings, store):
        run_id = resolve_or_fail(store, run)
        info = store.run(run_id)
        if info is None:
            fail(f"run {run_id} vanished while reading it")
        errors = store.errors(run_id)
        summary = store.error_summary(run_id)
        latest = store.reports(run_id, limit=1)
    diagnosis = latest[0] if latest else None
    if as_json:
        render.emit_json(
            {
                "run": render.run_json(info, settings),
                "summary": to_json(summary),
                "errors": [render.traced_json(err, settings) for err in errors],
                "diagnosis": None if diagnosis is None else to_json(diagnosis),
            }
        )
        return
    out = render.console()
    out.print(_header(info, summary, settings.trace_url(info.trace_id)))
    if not errors:
        out.print("No errors recorded for this run.")
    else:
        out.print(_summary_table(summary))
        out.print(_errors_table(errors, stack))
    if diagnosis is not None:
        out.print(_diagnosis_panel(diagnosis))
    elif errors:
        state = info.diagnosis_state or "not diagnosed"
        out.print(f"Diagnosis: {state} (run `otel-diag diagnose {render.short_id(info.id)}`).")


def _groups(
    database_url: str | None,
    tenant: str | None,
    since: datetime,
    service: str | None,
    agent: str | None,
    limit: int,
    as_json: bool,
) -> None:
    with reading(database_url, tenant) as (settings, store):
        found = store.error_groups(since=since, service=service, agent=agent, limit=limit)
    if as_json:
        groups = [
            {**to_json(g), "latest_trace_url": settings.trace_url(g.latest_trace_id)} for g in found
        ]
        render.emit_json({"tenant": settings.tenant, "since": since.isoformat(), "groups": groups})
        return
    out = render.console()
    if not found:
        out.print(f"No errors since {render.when(since.isoformat())}.")
        return
    tbl = render.table(
        f"Error groups since {render.when(since.isoformat())}",
        "count",
        "runs",
        "step",
        "source/category",
        "type",
        "message",
        "first seen",
        "last seen",
        "diagnosis",
        right=("count", "runs"),
        text=("message", "diagnosis"),
    )
    for g in found:
        diagnosis = g.latest_diagnosis
        tbl.add_row(
            render.count(g.occurrences),
            render.count(g.runs_affected),
            render.clip(g.step_name or render.NONE, 32),
            f"{g.source}/{g.error_category}",
            render.clip(g.error_type, 40),
            render.excerpt(g.message, 120),
            render.when(g.first_seen),
            render.when(g.last_seen),
            render.excerpt(diagnosis.root_cause_analysis, 80) if diagnosis else render.NONE,
        )
    out.print(tbl)


def _header(run: Run, summary: ErrorSummary, trace_url: str | None) -> Panel:
    lines = [
        Text.assemble(("run      ", "bold"), str(run.id)),
        Text.assemble(
            ("name     ", "bold"),
            run.name or render.NONE,
            ("   agent ", "bold"),
            run.agent_name or render.NONE,
        ),
        Text.assemble(
            ("status   ", "bold"),
            render.status(run.status),
            ("   started ", "bold"),
            render.when(run.started_at),
            ("   duration ", "bold"),
            render.millis(run.duration_ms),
        ),
        Text.assemble(
            ("usage    ", "bold"),
            f"{render.count(run.llm_calls)} LLM calls, "
            f"{render.count(run.tool_calls)} tool calls, "
            f"{render.count(run.input_tokens)} in / "
            f"{render.count(run.output_tokens)} out tokens, "
            f"{render.money(run.cost_usd, unpriced=bool(run.unpriced_tokens))}",
        ),
        Text.assemble(("trace    ", "bold"), trace_url or run.trace_id),
    ]
    return Panel(
        Group(*lines),
        title=render.failures(summary.failures, summary.attempts)
        if summary.attempts
        else "no errors",
        title_align="left",
        expand=False,
    )


def _summary_table(summary: ErrorSummary) -> Any:
    tbl = render.table(
        "Error shapes", "count", "category", "type", "first seen", "fingerprint", right=("count",)
    )
    for shape in summary.fingerprints:
        tbl.add_row(
            render.count(shape.count),
            shape.category,
            shape.error_type,
            render.when(shape.first_seen),
            shape.fingerprint[:12],
        )
    return tbl


def _errors_table(errors: Sequence[ErrorRow], stack: bool) -> Any:
    tbl = render.table(
        "Errors",
        "time (UTC)",
        "step",
        "try",
        "source/category",
        "type",
        "message",
        right=("try",),
        text=("message",),
    )
    for err in errors:
        message: RenderableType = render.excerpt(err.error_message, 160)
        if stack and err.stack_trace:
            message = Group(message, Text(compact_stack(err.stack_trace) or ""))
        step: RenderableType = render.clip(err.step_name, 32)
        if err.propagated_to:
            step = Group(step, render.clip("↑ " + " > ".join(err.propagated_to), 66))
        tbl.add_row(
            render.when(err.created_at),
            step,
            str(err.attempt),
            f"{err.source}/{err.error_category}",
            render.clip(err.error_type, 40),
            message,
        )
    return tbl


def _diagnosis_panel(diagnosis: Report) -> Panel:
    parts: list[Any] = [Text(diagnosis.root_cause_analysis)]
    actions = sorted(
        (a for a in diagnosis.recommended_actions if isinstance(a, Mapping)),
        key=lambda a: a.get("priority", 99),
    )
    for action in actions:
        parts.append(Text(f"{action.get('priority', '-')}. {action.get('action', '')}"))
    parts.append(
        Text(
            f"resume at: {diagnosis.resume_step or render.NONE}   "
            f"confidence: {diagnosis.confidence_score:.2f}   "
            f"by: {diagnosis.llm_provider}"
            + (f" ({diagnosis.llm_model})" if diagnosis.llm_model else "")
        )
    )
    return Panel(
        Group(*parts),
        title=f"Diagnosis ({render.when(diagnosis.created_at)})",
        title_align="left",
        expand=False,
    )
