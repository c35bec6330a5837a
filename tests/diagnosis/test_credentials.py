"""No key, no wasted calls: a diagnosis model without credentials is never asked.

The default model (``gpt-4o-mini``, OpenAI) with no ``OPENAI_API_KEY``, no
``OTEL_DIAG_LLM_API_KEY`` and no ``OTEL_DIAG_LLM_API_BASE``: the worker says so once when it
starts, every failed run gets a rules report (``no_credentials``) and no request leaves the
process; once the key appears in the environment, the next run is diagnosed by the LLM
(litellm sends it to the loopback server named by ``OPENAI_API_BASE``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otel_diag.config import Settings, load_settings
from otel_diag.diagnosis.credentials import CREDENTIALS
from otel_diag.diagnosis.worker import DiagnosisWorker
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.conftest import poll, run_uuid
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def keyless(
    db_url: str, tmp_path: Path, fake_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_BASE", fake_llm.url)  # where a request would go
    CREDENTIALS.forget()
    yield load_settings(
        {"OTEL_DIAG_HOME": str(tmp_path)},
        database_url=db_url,
        llm_model="gpt-4o-mini",
        llm_retries=0,
        decision_wait=0.0,
        diagnosis_ttl=0,
        spend_cap_usd_per_hour=0.0,
    )
    CREDENTIALS.forget()


def _said(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(1 for r in caplog.records if words in r.getMessage())


def test_without_a_key_the_rules_answer_without_a_request_until_the_key_appears(
    keyless: Settings,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="otel_diag")
    store = manager.tenant()
    worker = DiagnosisWorker(manager, keyless, poll_interval=0.05)
    worker.start()
    try:
        # the worker imports litellm first (seconds on a busy machine), then checks
        said = "no credentials for diagnosis model gpt-4o-mini"
        assert poll(lambda: _said(caplog, said), timeout=60)
        runs = [run_uuid(manager, seed_run()) for _ in range(2)]
        reports = [poll(lambda r=r: store.reports(store.resolve_run(r)), 30) for r in runs]
        assert all(reports), "no report within the poll budget"
        assert [r[0].fallback_reason for r in reports] == ["no_credentials"] * 2
        assert [r[0].llm_provider for r in reports] == ["rules"] * 2
        assert fake_llm.requests == []  # not one attempt
        assert _said(caplog, "no credentials") == 1  # said once, at start, not per run
        assert "OPENAI_API_KEY" in next(
            r.getMessage() for r in caplog.records if "no credentials" in r.getMessage()
        )

        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")  # the configuration changes
        later = run_uuid(manager, seed_run())
        report = poll(lambda: store.reports(store.resolve_run(later)), 30)
        assert report and report[0].llm_provider == "openai"
        assert len(fake_llm.requests) == 1
        assert _said(caplog, "found: diagnosing with the LLM again") == 1
    finally:
        worker.stop(5)


def test_an_api_base_or_an_explicit_key_counts_as_configured(keyless: Settings) -> None:
    from dataclasses import replace

    assert CREDENTIALS.missing(keyless) == ("OPENAI_API_KEY",)
    assert CREDENTIALS.missing(replace(keyless, llm_api_base="http://127.0.0.1:1/v1")) == ()
    assert CREDENTIALS.missing(replace(keyless, llm_api_key="sk-x")) == ()
    # a provider that authenticates without an *_API_KEY variable is never held back
    assert CREDENTIALS.missing(replace(keyless, llm_model="ollama/llama3")) == ()
