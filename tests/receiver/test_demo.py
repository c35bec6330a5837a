"""``make demo``: a failing agent under ``opentelemetry-instrument`` sends OTLP to serve."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest

from otel_diag.examples import otlp_demo
from tests.receiver.harness import Running


def test_demo_sends_the_agents_traces_over_otlp_and_shows_errors_and_a_diagnosis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port where no server answers: the demo starts its own
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("OTEL_DIAG_DEMO_URL", f"http://127.0.0.1:{s.getsockname()[1]}")
    for key in otlp_demo.LLM_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    assert otlp_demo.main() == 0
    out = capsys.readouterr().out
    assert "started a temporary otel-diag serve" in out
    assert out.count("search_flights") >= 3 and "ConnectionError" in out
    assert "hunter2" not in out  # the password in the error message was redacted on ingest
    assert "diagnosis (rules" in out and "resume at 'search_flights'" in out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_against_a_running_server_ends_with_the_runs_console_page(
    serve: Callable[..., Running],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    srv = serve(diagnosis="rules")
    monkeypatch.setenv("OTEL_DIAG_DEMO_URL", srv.http_url)
    monkeypatch.setenv("OTEL_DIAG_DEMO_GRPC", f"http://{srv.grpc_target}")
    monkeypatch.setenv("COLUMNS", "200")
    assert otlp_demo.main() == 0
    out = capsys.readouterr().out
    assert f"using the otel-diag server at {srv.http_url}" in out
    link = re.search(r"this run in the web console: (\S+)", out)
    assert link, out
    page = srv.http.get(link.group(1))

    assert page.status_code == 200
    assert "search_flights" in page.text and "ConnectionError" in page.text
