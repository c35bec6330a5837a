"""``otel-diag serve`` tells a person where the web console is, and that address opens it."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from otel_diag.cli.serve import browsable
from tests.receiver.process import ServeProcess

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_serve_prints_the_console_address_and_it_serves_the_console(db_url: str) -> None:
    with ServeProcess(db_url) as srv:
        deadline = time.monotonic() + 30
        while "web console:" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        found = re.search(r"web console: (http://\S+)", srv.log())
        assert found, srv.log()
        assert found.group(1) == f"{srv.http_url}/"
        page = httpx.get(found.group(1), timeout=10)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "otel-diag" in page.text and "Overview" in page.text


@pytest.mark.parametrize(
    ("bind", "opened"),
    [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")],
)
def test_a_wildcard_bind_is_shown_as_loopback(bind: str, opened: str, db_url: str) -> None:
    assert browsable(bind) == opened
