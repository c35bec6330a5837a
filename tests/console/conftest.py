"""Fixtures of the web console's tests: a real ``serve`` on loopback and one real chromium.

The browser is Debian's chromium (``tests/peers/chromium.sh`` installs it; Playwright is a
dev extra) launched once per test session, each test in its own context (own cookies). Without
chromium the browser tests skip locally and fail under ``CI=true``. The console's queries are
the storage port's, tested on all three backends in ``tests/store``; the console's own
tests run on SQLite, where a server starts in a blink, and the main browser test on MongoDB
(FerretDB) too.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receiver.harness import serve
from tests.receiver.otlp import Span, to_json

__all__ = ["serve"]

CHROMIUM = os.environ.get("OTEL_DIAG_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> str:
    """SQLite by default; a test parametrized with ``mongodb`` gets a FerretDB database."""
    if getattr(request, "param", "sqlite") == "mongodb":
        return str(request.getfixturevalue("make_mongo_database")())
    path = tmp_path / "otel_diag.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run; bash tests/peers/chromium.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One chromium for the console tests, headless, Debian's binary, never a download.

    Package-scoped, so it is closed when the console tests end: while Playwright's sync API
    runs it leaves its event loop set on the thread, and ``asyncio.run`` in later tests fails.
    """
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) at 1280 px."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def send(http: httpx.Client, spans: list[Span], key: str | None = None, **resource: Any) -> None:
    """Spans to the server over OTLP/HTTP (JSON), as any OpenTelemetry SDK would send them."""
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = json.dumps(to_json(spans, {"service.name": "checkout", **resource}))
    answer = http.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
