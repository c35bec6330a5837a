"""The console in a real chromium: live runs, a run's errors and diagnosis, diagnose again,
key mode, and span data that tries to run script."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from otel_diag.store.mongo.storage import MongoStorage
from tests.console.conftest import send
from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace

XSS_MESSAGE = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2; alert(2)">'
)
XSS_NAME = "<img src=x onerror=alert(1)>plan"


@pytest.mark.parametrize("db_url", ["sqlite", "mongodb"], indirect=True)
def test_a_failed_run_appears_live_then_shows_its_errors_and_diagnosis_and_diagnoses_again(
    serve: Callable[..., Running], context: Any, db_url: str
) -> None:
    srv = serve(
        background=True,
        diagnosis="rules",
        decision_wait=0.2,
        trace_url_template="http://jaeger.local/trace/{trace_id}",
    )
    assert isinstance(srv.server.storage, MongoStorage) == db_url.startswith("mongodb://")
    page = context.new_page()
    page.goto(f"{srv.http_url}/runs")
    expect(page.get_by_text("No run matches.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    spans = agent_trace("order-4711", tool_error="search backend timed out after 30s")
    spans[0].name = "invoke_workflow checkout"
    send(srv.http, spans)

    row = page.get_by_role("link", name="invoke_workflow checkout")
    expect(row).to_be_visible(timeout=15_000)  # polled in, no reload
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("tbody tr").first).to_contain_text("failed")

    row.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("invoke_workflow checkout")
    errors = page.get_by_role("region", name=re.compile("^Errors"))
    expect(errors.get_by_text("search backend timed out after 30s", exact=True)).to_be_visible()
    errors.get_by_text("Context").first.click()  # collapsible
    expect(errors.locator("pre").first).to_be_visible()
    expect(page.get_by_role("link", name="Open trace")).to_have_attribute(
        "href", re.compile(r"^http://jaeger\.local/trace/[0-9a-f]{32}$")
    )
    # the worker's diagnosis (rules) arrives by the live update
    card = page.locator("#diagnosis")
    expect(card).to_contain_text("Answered by", timeout=15_000)
    expect(card).to_contain_text("rules")
    expect(page.locator("tr.resume")).to_have_count(1)  # the resume step, highlighted
    history = page.locator("#run-history tbody tr")
    expect(history).to_have_count(1)

    page.get_by_role("button", name="Diagnose again").click()
    expect(page.get_by_role("status").first).to_contain_text("Diagnosed again")
    expect(history).to_have_count(2)


def test_key_mode_asks_for_the_key_once_and_shows_that_tenant_only(
    serve: Callable[..., Running], context: Any
) -> None:
    srv = serve(api_keys="acme:key-acme-123,globex:key-globex-456")
    acme, globex = agent_trace("acme-run"), agent_trace("globex-run")
    acme[0].name, globex[0].name = "acme nightly sync", "globex secret plan"
    send(srv.http, acme, key="key-acme-123")
    send(srv.http, globex, key="key-globex-456")
    globex_id = srv.server.storage.tenant("globex").runs()[0].id

    page = context.new_page()
    visited: list[str] = []
    page.on("request", lambda r: visited.append(r.url))
    for path in ("/", "/runs", f"/runs/{globex_id}", "/cost"):
        page.goto(srv.http_url + path)
        expect(page).to_have_url(f"{srv.http_url}/login")  # nothing but the login
        expect(page.get_by_role("navigation", name="Console")).to_have_count(0)

    page.get_by_label("API key").fill("key-globex-999")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not known")
    assert not [c for c in context.cookies() if c["name"] == "otel_diag_key"]

    page.get_by_label("API key").fill("key-acme-123")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{srv.http_url}/runs")
    expect(page.get_by_role("link", name="acme nightly sync")).to_be_visible()
    expect(page.get_by_text("globex secret plan")).to_have_count(0)
    page.goto(f"{srv.http_url}/runs/{globex_id}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("globex secret plan")).to_have_count(0)

    cookie = next(c for c in context.cookies() if c["name"] == "otel_diag_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not [u for u in visited if "key-acme" in u or "key-globex" in u]  # never in a URL
    assert page.evaluate("document.cookie").find("key-acme") == -1  # no script reads it


def test_span_data_carrying_markup_is_shown_as_text_and_runs_nothing(
    serve: Callable[..., Running], context: Any
) -> None:
    srv = serve()
    spans = agent_trace("xss", tool_error=XSS_MESSAGE)
    spans[0].name = XSS_NAME
    spans[3].name = XSS_NAME
    spans[3].attributes["gen_ai.tool.name"] = XSS_NAME
    send(srv.http, spans, **{"service.name": "<script>alert(3)</script>"})
    run_id = srv.server.storage.tenant("default").runs()[0].id

    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in ("/", "/runs", f"/runs/{run_id}", "/errors"):
        page.goto(srv.http_url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, path
    page.goto(f"{srv.http_url}/runs/{run_id}")
    expect(page.get_by_text(XSS_MESSAGE).first).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text(XSS_NAME)
    assert page.locator("img").count() == 0  # the payload's <img> never became an element
    page.wait_for_timeout(5_500)  # one live update swaps the regions in: still inert
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
