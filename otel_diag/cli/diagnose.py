"""``otel-diag diagnose RUN`` and ``otel-diag diagnose --worker``.

``diagnose RUN`` diagnoses one run now (RUN: full run UUID, unique prefix, or trace id) and
prints the stored report; without ``--force`` a report that already answers the run's
current errors is shown as is. ``diagnose RUN --history`` diagnoses nothing: it lists the
run's stored reports, newest first (each ``--force`` adds one). ``diagnose --worker`` runs the batch processor alone, for
every tenant, until SIGINT/SIGTERM (``--once``: what is ready now, then exit), the same
worker ``otel-diag serve`` runs inside.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from otel_diag.cli import render
from otel_diag.cli.common import (
    database_failures,
    fail,
    open_all_tenants,
    open_store,
    process_log_level,
    settings_from,
    store_options,
)
from otel_diag.cli.options import json_option
from otel_diag.config import Settings
from otel_diag.logs import configure_logging
from otel_diag.rows import Report, Run, to_json
from otel_diag.store.port import AmbiguousRunError


@click.command("diagnose")
@click.argument("run", required=False)
@store_options
@click.option("--force", is_flag=True, help="Diagnose again even if a report is current.")
@click.option(
    "--history",
    is_flag=True,
    help="List the run's stored reports, newest first (diagnoses nothing).",
)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="With --history: at most this many reports.",
)
@json_option
@click.option(
    "--worker",
    is_flag=True,
    help="Run the batch processor: diagnose every failed run of every tenant as it "
    "completes, until SIGINT/SIGTERM.",
)
@click.option("--once", is_flag=True, help="With --worker: diagnose what is ready, then exit.")
def diagnose_command(
    run: str | None,
    database_url: str | None,
    tenant: str | None,
    force: bool,
    history: bool,
    limit: int,
    as_json: bool,
    worker: bool,
    once: bool,
) -> None:
    """Diagnose RUN (run id, unique prefix, or trace id), list its reports (--history), or
    run the diagnosis worker."""
    if worker == bool(run):
        fail("give a RUN to diagnose, or --worker (not both)")
    if once and not worker:
        fail("--once goes with --worker")
    if history and (force or worker):
        fail("--history lists stored reports; it goes with neither --force nor --worker")
    settings = settings_from(database_url, tenant)
    if worker:
        _worker(settings, once, as_json)
    elif history:
        assert run is not None
        _history(settings, run, limit, as_json)
    else:
        assert run is not None
        _one(settings, run, force, as_json)


def _one(settings: Settings, ref: str, force: bool, as_json: bool) -> None:
    from otel_diag.diagnosis.service import (
        DiagnosisDisabledError,
        DiagnosticsService,
        NothingToDiagnoseError,
        RunNotFoundError,
    )

    storage, store = open_store(settings)
    try:
        with database_failures(storage):
            service = DiagnosticsService(settings.tenant, manager=storage, settings=settings)
            try:
                report = service.analyze_failure(ref, force=force)
            except RunNotFoundError:
                fail(
                    f"no run matches {ref!r} (give a run id, a unique prefix of one, or a trace id)"
                )
            except AmbiguousRunError as exc:
                fail(f"{exc}; type more characters")
            except (NothingToDiagnoseError, DiagnosisDisabledError) as exc:
                fail(str(exc))
            run = store.run(report.run_id)
    finally:
        storage.dispose()
    trace_url = settings.trace_url(run.trace_id if run else None)
    if as_json:
        render.emit_json({**to_json(report), "trace_url": trace_url})
    else:
        render.console().print(_panel(report, run, trace_url))


def _history(settings: Settings, ref: str, limit: int, as_json: bool) -> None:
    storage, store = open_store(settings)
    try:
        with database_failures(storage):
            try:
                rid = store.resolve_run(ref)
            except AmbiguousRunError as exc:
                fail(f"{exc}; type more characters")
            if rid is None:
                fail(
                    f"no run matches {ref!r} (give a run id, a unique prefix of one, or a trace id)"
                )
            reports = store.reports(rid, limit=limit)
            run = store.run(rid)
    finally:
        storage.dispose()
    trace_url = settings.trace_url(run.trace_id if run else None)
    if as_json:
        render.emit_json(
            {"run_id": str(rid), "reports": [to_json(r) for r in reports], "trace_url": trace_url}
        )
        return
    out = render.console()
    if not reports:
        out.print(f"run {rid} has no diagnosis yet (otel-diag diagnose {render.short_id(rid)})")
        return
    for report in reports:
        out.print(_panel(report, run, trace_url))


def _panel(report: Report, run: Run | None, trace_url: str | None) -> Panel:
    actions = render.table(None, "#", "action", "why", right=("#",), text=("action", "why"))
    for action in report.recommended_actions:
        actions.add_row(str(action["priority"]), action["action"], action.get("rationale") or "")
    by = report.llm_provider + (f" ({report.llm_model})" if report.llm_model else "")
    if report.fallback_reason:
        by += f", fallback: {report.fallback_reason}"
    if report.reused_from:
        by += f", reused from report {render.short_id(report.reused_from)}"
    usage = (
        f"{render.count(report.prompt_tokens)} prompt / "
        f"{render.count(report.completion_tokens)} completion tokens, "
        f"{render.money(report.cost_usd)}, {render.millis(report.latency_ms)}"
    )
    name = run.name if run is not None else None
    facts = [
        Text.assemble(("run        ", "bold"), str(report.run_id), f"  {name or ''}"),
        Text.assemble(("category   ", "bold"), report.error_category or render.NONE),
        Text.assemble(("resume at  ", "bold"), report.resume_step or "start over"),
        Text.assemble(("confidence ", "bold"), f"{report.confidence_score:.2f}"),
        Text.assemble(("by         ", "bold"), by),
        Text.assemble(("usage      ", "bold"), usage),
    ]
    if trace_url:
        facts.append(Text.assemble(("trace      ", "bold"), trace_url))
    return Panel(
        Group(Text(report.root_cause_analysis), Text(""), actions, Text(""), *facts),
        title=f"Diagnosis ({render.when(report.created_at)})",
        title_align="left",
        expand=False,
    )


def _worker(settings: Settings, once: bool, as_json: bool) -> None:
    from otel_diag.diagnosis.worker import DiagnosisWorker

    if settings.diagnosis == "off":
        fail("diagnosis is off (OTEL_DIAG_DIAGNOSIS=off)")
    configure_logging(process_log_level())  # like serve: one line per diagnosis
    # No tenant is opened up front: the worker serves the tenants it discovers (the key
    # tenants, the databases that exist), and with keys there may be no 'default' at all.
    storage = open_all_tenants(settings)
    worker = DiagnosisWorker(storage, settings)
    out = render.console(stderr=as_json)
    try:
        if once:
            with database_failures(storage):
                stored = worker.drain()
            out.print(f"diagnosed {stored} run(s)")
        else:
            _serve(worker, out)
    finally:
        storage.dispose()
    if as_json:
        render.emit_json({"worker_id": worker.worker_id, **dict(worker.stats)})


def _serve(worker: Any, out: Any) -> None:
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        worker.start()
        out.print(
            f"diagnosis worker {worker.worker_id} running "
            f"(mode {worker.settings.diagnosis}, model {worker.settings.llm_model}); "
            "Ctrl-C to stop"
        )
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        finished = worker.stop(timeout=10.0)
        stats = dict(worker.stats)
        out.print(
            f"stopped{'' if finished else ' (diagnoses still running were left to their lease)'}: "
            f"{stats.get('stored', 0)} report(s) stored"
        )
