"""The README's picture of a diagnosis in Jaeger, taken from a real run of the stack.

    python -m tests.e2e.screenshot [--output deploy/screenshots/jaeger-diagnosis-span.png]

Starts the ``make stack`` processes (Jaeger v2, the gateway collector, ``otel-diag serve``)
on free loopback ports, runs one failing run of :mod:`tests.e2e.agent_app` through the
collector, waits until otel-diag's ``diagnose trip-planner`` span has reached Jaeger, and
has headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; no browser is
downloaded) render what Jaeger serves for that span's trace.

What Jaeger serves is its query API (the JSON indented for reading): the Jaeger UI's assets are
built from the separate jaeger-ui project and are not part of the Go module, and no package
registry reachable here serves them, so the built Jaeger answers its UI routes with a
placeholder page. With ``--jaeger-ui-assets DIR`` (a built jaeger-ui) the UI's trace page
is captured instead. Needs ``pip install playwright`` (only this script uses it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.e2e.observe import jaeger_traces, run_app, tags
from tests.e2e.processes import free_port, wait_until
from tests.e2e.stack import ROOT, start_collector, start_jaeger, start_otel_diag

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_OUTPUT = ROOT / "deploy" / "screenshots" / "jaeger-diagnosis-span.png"


def capture(url: str, output: Path, *, pretty_print_json: bool) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url, wait_until="networkidle")
            if pretty_print_json:  # indent the JSON Jaeger answered, as a JSON viewer would
                page.evaluate(
                    "() => { const pre = document.querySelector('pre');"
                    " pre.textContent = JSON.stringify(JSON.parse(pre.textContent), null, 2); }"
                )
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output), full_page=True)
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    from tests.peers import build_peer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--jaeger-ui-assets", default="", help="a built jaeger-ui directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="otel-diag-screenshot-"))
    started: list[Any] = []
    try:
        jaeger = start_jaeger(build_peer("jaeger"), workdir, ui_assets=args.jaeger_ui_assets)
        started.append(jaeger)
        grpc_port, http_port = free_port(), free_port()
        diag = start_otel_diag(
            workdir, jaeger=jaeger, diagnosis_endpoint=f"http://127.0.0.1:{http_port}"
        )
        started.append(diag)
        collector = start_collector(
            build_peer("otelcol"),
            workdir,
            config="gateway.yaml",
            jaeger=jaeger,
            otel_diag=[diag],
            otlp_grpc_port=grpc_port,
            otlp_http_port=http_port,
        )
        started.append(collector)
        sent = run_app(collector.grpc_endpoint, workdir, "--runs", "1", "--fail-every", "1")
        run_id = sent["runs"][0]["run_id"]

        def diagnosis_trace_id() -> str | None:
            for trace in jaeger_traces(jaeger.url, "otel-diag", "diagnose trip-planner"):
                for span in trace["spans"]:
                    if tags(span).get("otel_diag.run.id") == run_id:
                        return str(span["traceID"])
            return None

        trace_id = wait_until(
            diagnosis_trace_id,
            timeout=90,
            what="the diagnose span in Jaeger",
            procs=[jaeger.proc, diag.proc, collector.proc],
        )
        if args.jaeger_ui_assets:
            capture(f"{jaeger.url}/trace/{trace_id}", args.output, pretty_print_json=False)
        else:
            capture(f"{jaeger.url}/api/traces/{trace_id}", args.output, pretty_print_json=True)
        print(f"{args.output}: Jaeger's view of trace {trace_id} (run {run_id})")
    except BaseException:
        print(f"screenshot failed; logs in {workdir}", file=sys.stderr)
        raise
    finally:
        for item in reversed(started):
            item.proc.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
