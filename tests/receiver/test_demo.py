"""``make demo``: a failing agent under ``opentelemetry-instrument`` sends OTLP to serve."""

from __future__ import annotations

import socket

import pytest

from otel_diag.examples import otlp_demo


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
