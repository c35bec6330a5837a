"""What a running ``otel-diag serve`` writes to its log for each diagnosed run: one line.

A real ``serve`` process at its default level, a failed run sent over OTLP/HTTP, the LLM a
loopback OpenAI-compatible server reached through the real litellm: the log is read as an
operator would read it. ``--log-level debug`` brings litellm's own lines back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.conftest import run_uuid, valid_answer
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.receiver.otlp import agent_trace, to_protobuf
from tests.receiver.process import ServeProcess

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # logs, not SQL


def _llm_env(server: FakeOpenAI) -> dict[str, str]:
    return {
        "OTEL_DIAG_LLM_MODEL": "openai/gpt-4o-mini",
        "OTEL_DIAG_LLM_API_BASE": server.url,
        "OTEL_DIAG_LLM_API_KEY": "test-key",
        "OTEL_DIAG_LLM_RETRIES": "0",
        "OTEL_DIAG_DECISION_WAIT": "0.2",
    }


def _diagnose_over_otlp(srv: ServeProcess, run: str) -> dict[str, object]:
    body = to_protobuf(agent_trace(run)).SerializeToString()
    sent = httpx.post(
        f"{srv.http_url}/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reply = httpx.get(f"{srv.http_url}/api/runs/{run}/diagnostics/latest", timeout=10)
        if reply.status_code == 200:
            return dict(reply.json())
        time.sleep(0.1)
    raise AssertionError(f"no diagnosis within 60 s; log:\n{srv.log()}")


def test_serve_logs_one_line_per_diagnosed_run_and_nothing_from_litellm(
    db_url: str, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(Reply(content=valid_answer(resume_step="search")))
    with ServeProcess(db_url, env=_llm_env(fake_llm), args=(), log_level="info") as srv:
        deadline = time.monotonic() + 30
        while "otel-diag serving:" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)  # the start-up lines (one per service, one for the ports)
        started = len(srv.log().splitlines())
        reports = [_diagnose_over_otlp(srv, f"quiet-{n}") for n in range(2)]
        time.sleep(0.3)  # anything logged after the report was stored
        lines = srv.log().splitlines()[started:]
    assert [r["llm_provider"] for r in reports] == ["openai", "openai"]
    assert reports[1]["reused_from"] == reports[0]["id"]  # same failure: the report reused
    assert len(fake_llm.requests) == 1
    diagnosed = [line for line in lines if "diagnosed run" in line]
    assert len(diagnosed) == 2, lines
    assert lines == diagnosed  # nothing else: no litellm chatter, no warnings, no HTTP lines
    first = next(line for line in diagnosed if str(reports[0]["run_id"]) in line)
    assert re.search(r"provider=openai category=\w+ resume_step=search confidence=0\.\d+ ", first)
    assert "duration_ms=" in first and "INFO otel_diag.diagnosis" in first
    assert f"reused_from={reports[0]['id']}" in diagnosed[1]


def test_debug_level_shows_litellms_lines(
    db_url: str,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
    tmp_path: Path,
) -> None:
    run_id = run_uuid(manager, seed_run())
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OTEL_DIAG_HOME": str(tmp_path)}
    env |= _llm_env(fake_llm)
    cli = [str(Path(sys.executable).with_name("otel-diag"))]
    args = ["diagnose", run_id, "--force", "--json", "--database-url", db_url]

    quiet = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=60)
    loud = subprocess.run(
        [*cli, "--log-level", "debug", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stderr == ""  # the report is the output; the default CLI level is warning
    assert "DEBUG LiteLLM: " in loud.stderr and "diagnosed run" in loud.stderr
    assert str(uuid.UUID(run_id)) in loud.stderr
    # litellm's lines go to stderr, never through its own handler to stdout, where --json goes
    assert "LiteLLM" not in loud.stdout
    assert json.loads(loud.stdout)["run_id"] == run_id


APP = """
import logging, sys, time, uuid
logging.basicConfig(level=logging.INFO)  # an application that logs at INFO
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_diag.config import load_settings
from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store import open_storage
from tests.diagnosis.conftest import FLIGHTS
from tests.diagnosis.scenarios import seed

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ErrorLogSpanExporter()))
key = seed(provider.get_tracer("app"), FLIGHTS.root, str(uuid.uuid4()))
store = open_storage(load_settings()).tenant()
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not store.reports(store.resolve_run(key)):
    time.sleep(0.05)
provider.shutdown()
print("reports", len(store.reports(store.resolve_run(key))))
"""


def test_an_app_diagnosing_in_process_sees_one_line_per_diagnosis(
    db_url: str, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    fake_llm.script(Reply(content=valid_answer()))
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OTEL_DIAG_HOME": str(tmp_path),
        "OTEL_DIAG_DATABASE_URL": db_url,
        "OTEL_DIAG_DIAGNOSIS_IN_PROCESS": "true",
        "PATH": "/usr/bin:/bin",
        **_llm_env(fake_llm),
    }
    app = subprocess.run(
        [sys.executable, "-c", APP],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert app.returncode == 0, app.stderr
    assert app.stdout.strip() == "reports 1"
    lines = app.stderr.splitlines()
    assert [line for line in lines if "diagnosed run" in line] != []
    assert lines == [line for line in lines if "diagnosed run" in line], lines
