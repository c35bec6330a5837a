"""collector_config/gateway.yaml end to end: app -> collector -> Jaeger v2 and otel-diag.

The app (:mod:`tests.e2e.agent_app`) sends OTLP/gRPC to the gateway collector. The collector
sends every span to ``otel-diag serve`` (with a file-backed queue) and the tail-sampled
traces (all failed ones) to Jaeger. otel-diag links its runs to Jaeger
(``OTEL_DIAG_TRACE_URL_TEMPLATE``) and sends each diagnosis back through the collector as a
``diagnose {run}`` span linked to the failed trace. Read back through Jaeger's query API and
otel-diag's REST API.

The collector runs the shipped file with loopback addresses and paths, and
``tail_sampling.decision_wait`` cut from 10 s to 2 s so that Jaeger has a trace sooner.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.observe import (
    all_runs,
    app_result,
    jaeger_trace,
    jaeger_traces,
    run_app,
    start_app,
    steps_by_trace,
    tags,
)
from tests.e2e.processes import free_port, wait_until
from tests.e2e.stack import (
    Collector,
    Jaeger,
    OtelDiag,
    start_collector,
    start_jaeger,
    start_otel_diag,
)

pytestmark = pytest.mark.timeout(1800)  # a cold build of a peer runs in the first test

OUTAGE_S = 20


def gateway(
    jaeger_bin: Path, otelcol_bin: Path, workdir: Path, started: list[Any]
) -> tuple[Jaeger, OtelDiag, Collector]:
    jaeger = start_jaeger(jaeger_bin, workdir)
    started.append(jaeger)
    grpc_port, http_port = free_port(), free_port()
    diag = start_otel_diag(
        workdir, jaeger=jaeger, diagnosis_endpoint=f"http://127.0.0.1:{http_port}"
    )
    started.append(diag)
    collector = start_collector(
        otelcol_bin,
        workdir,
        config="gateway.yaml",
        jaeger=jaeger,
        otel_diag=[diag],
        otlp_grpc_port=grpc_port,
        otlp_http_port=http_port,
    )
    started.append(collector)
    return jaeger, diag, collector


def test_a_failed_run_reaches_jaeger_whole_and_otel_diag_links_its_diagnosis_to_it(
    jaeger_bin: Path, otelcol_bin: Path, tmp_path: Path, started: list[Any]
) -> None:
    jaeger, diag, collector = gateway(jaeger_bin, otelcol_bin, tmp_path, started)
    procs = [jaeger.proc, diag.proc, collector.proc]

    sent = run_app(collector.grpc_endpoint, tmp_path, "--runs", "4", "--fail-every", "3")
    failed = next(r for r in sent["runs"] if r["failed"])
    trace_id = failed["trace_id"]

    # Jaeger stores the failed trace whole: every span the app ended, all in one trace.
    stored = wait_until(
        lambda: (
            (t := jaeger_trace(jaeger.url, trace_id)) and len(t["spans"]) >= failed["spans"] and t
        ),
        timeout=60,
        what=f"the failed trace {trace_id} in Jaeger",
        procs=procs,
    )
    assert len(stored["spans"]) == failed["spans"]
    assert {s["traceID"] for s in stored["spans"]} == {trace_id}
    assert sum(1 for s in stored["spans"] if tags(s).get("error") is True) >= 3

    # otel-diag has the run, failed, and its trace_url is that trace in Jaeger.
    with diag.client() as api:
        run = wait_until(
            lambda: next((r for r in all_runs(api, "failed") if r["trace_id"] == trace_id), None),
            timeout=60,
            what="the failed run in otel-diag",
            procs=procs,
        )
        assert run["trace_url"] == f"{jaeger.url}/trace/{trace_id}"
        assert httpx.get(run["trace_url"], timeout=10).status_code == 200  # the UI's route
        api_url = run["trace_url"].replace("/trace/", "/api/traces/", 1)
        linked = httpx.get(api_url, timeout=10).json()["data"][0]
        assert linked["traceID"] == trace_id
        assert {s["spanID"] for s in linked["spans"]} == {s["spanID"] for s in stored["spans"]}

        def diagnosis() -> dict[str, Any] | None:
            reply = api.get(f"/api/runs/{run['id']}/diagnostics/latest")  # 404 until there is one
            return dict(reply.json()) if reply.status_code == 200 else None

        report = wait_until(
            diagnosis, timeout=60, what="a diagnosis of the failed run", procs=procs
        )
    assert report["llm_provider"] == "rules"

    # The diagnosis span came back through the collector to Jaeger, linked to the trace.
    def diagnosis_span() -> dict[str, Any] | None:
        for trace in jaeger_traces(jaeger.url, "otel-diag", "diagnose trip-planner"):
            for span in trace["spans"]:
                if tags(span).get("otel_diag.run.id") == run["id"]:
                    return dict(span)
        return None

    span = wait_until(diagnosis_span, timeout=60, what="the diagnose span in Jaeger", procs=procs)
    assert span["traceID"] != trace_id  # its own trace, linked, never a child
    assert trace_id in {ref["traceID"] for ref in span["references"]}
    assert {ref["spanID"] for ref in span["references"]} <= {s["spanID"] for s in stored["spans"]}
    assert tags(span)["otel_diag.diagnosis.report_id"] == report["id"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_otel_diag_down_for_20_s_loses_nothing_the_collector_queued_on_disk(
    stop: signal.Signals,
    jaeger_bin: Path,
    otelcol_bin: Path,
    tmp_path: Path,
    started: list[Any],
    figures: Callable[[str], None],
) -> None:
    """Stop (or kill) otel-diag while traffic flows; on restart the disk queue replays it all."""
    _, diag, collector = gateway(jaeger_bin, otelcol_bin, tmp_path, started)
    procs = [diag.proc, collector.proc]
    app = start_app(
        collector.grpc_endpoint, tmp_path, "--duration", str(OUTAGE_S + 15), "--interval", "0.1"
    )
    try:
        with diag.client() as api:
            wait_until(lambda: all_runs(api), timeout=60, what="traffic in otel-diag", procs=procs)
        diag.proc.stop(stop)
        down_from = time.time()
        time.sleep(OUTAGE_S)  # the outage itself: the app keeps sending to the collector
        down_until = time.time()
        diag.restart()
    finally:
        sent = app_result(app, tmp_path, timeout=300)

    runs_sent = len(sent["runs"])
    failed_sent = sum(1 for r in sent["runs"] if r["failed"])
    during_outage = [r for r in sent["runs"] if down_from <= r["at"] <= down_until]
    assert len(during_outage) > OUTAGE_S  # traffic did flow while otel-diag was down

    expected = {r["trace_id"]: r["steps"] for r in sent["runs"]}
    with diag.client() as api:

        def stored() -> tuple[int, int] | None:
            runs, failed = len(all_runs(api)), len(all_runs(api, "failed"))
            return (runs, failed) if (runs, failed) == (runs_sent, failed_sent) else None

        try:
            wait_until(
                stored, timeout=180, what="every run sent", procs=[diag.proc, collector.proc]
            )
        finally:
            figures(
                f"restart ({stop.name}): sent {runs_sent} runs ({failed_sent} failed; {sent['spans']} spans, "
                f"{sum(expected.values())} of them steps; "
                f"{len(during_outage)} runs during the {OUTAGE_S} s outage); stored "
                f"{len(all_runs(api))} runs ({len(all_runs(api, 'failed'))} failed, "
                f"{sum(steps_by_trace(diag.database_url).values())} steps)"
            )
    steps = steps_by_trace(diag.database_url)
    assert steps == expected  # every span below every root, nothing twice
