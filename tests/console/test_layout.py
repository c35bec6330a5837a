"""The console at 1280 px and 390 px, by keyboard, and the README's screenshots.

Screenshots of Overview, Run detail and Cost are written to the test's directory, and to
``$OTEL_DIAG_SCREENSHOTS`` when set (``docs/screenshots`` holds the ones the README shows).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import send
from tests.console.demo import run_spans, send_a_day
from tests.receiver.harness import Running

PAGES = ("/", "/runs", "/errors", "/cost", "/agents")
SCREENSHOTS = os.environ.get("OTEL_DIAG_SCREENSHOTS")
"""Read at import: the tests' isolated environment drops every OTEL_DIAG_* variable."""


def _failed_run(srv: Running) -> str:
    spans = run_spans(random.Random(1), time.time_ns() - 60 * 10**9, steps=8, fail=True)
    spans[0].name = "invoke_workflow trip-planner"
    send(srv.http, spans)
    store = srv.server.storage.tenant("default")
    return str(store.resolve_run(spans[0].trace_id.hex()))


def test_every_page_fits_a_390_px_phone_without_sideways_scrolling(
    serve: Callable[..., Running], browser: Any
) -> None:
    srv = serve()
    send_a_day(srv.http, runs=40)
    run_id = _failed_run(srv)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = ctx.new_page()
    for path in (*PAGES, f"/runs/{run_id}"):
        page.goto(srv.http_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
        expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    ctx.close()


def test_the_diagnose_button_is_reached_and_pressed_by_keyboard(
    serve: Callable[..., Running], context: Any
) -> None:
    srv = serve(diagnosis="rules")
    run_id = _failed_run(srv)
    page = context.new_page()
    page.goto(f"{srv.http_url}/runs/{run_id}")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    button = page.get_by_role("button", name="Diagnose again")
    for _ in range(30):
        page.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#run-history tbody tr")).to_have_count(1)


def test_screenshots_of_overview_run_detail_and_cost(
    serve: Callable[..., Running], context: Any, tmp_path: Path
) -> None:
    srv = serve(diagnosis="rules", trace_url_template="http://localhost:16686/trace/{trace_id}")
    send_a_day(srv.http)
    run_id = _failed_run(srv)
    page = context.new_page()
    page.goto(f"{srv.http_url}/runs/{run_id}")
    page.get_by_role("button", name="Diagnose again").click()
    expect(page.locator("#diagnosis")).to_contain_text("Answered by")
    shots = {
        "overview.png": "/",
        "run-detail.png": f"/runs/{run_id}",
        "cost.png": "/cost",
    }
    for name, path in shots.items():
        page.goto(srv.http_url + path)
        page.screenshot(path=str(tmp_path / name), full_page=True)
        assert (tmp_path / name).stat().st_size > 10_000
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copyfile(tmp_path / name, Path(SCREENSHOTS) / name)
