"""``otel-diag diagnose RUN`` and ``otel-diag diagnose --worker``, on a store seeded for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from otel_diag.cli import main
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.conftest import poll, report_counts, run_uuid
from tests.fakes.openai_server import FakeOpenAI


def llm_env(server: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {
        "OTEL_DIAG_LLM_MODEL": "openai/gpt-4o-mini",
        "OTEL_DIAG_LLM_API_BASE": server.url,
        "OTEL_DIAG_LLM_API_KEY": "test-key",
        "OTEL_DIAG_LLM_RETRIES": "0",
        "OTEL_DIAG_DECISION_WAIT": "0",
        **extra,
    }


def invoke(db_url: str, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["diagnose", *args, "--database-url", db_url], env=env)


def test_diagnose_run_prints_the_report_as_json_or_readably(
    db_url: str,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    run_id = run_uuid(manager, seed_run())
    result = invoke(db_url, llm_env(fake_llm), run_id[:8], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["run_id"] == run_id
    assert report["llm_provider"] == "openai" and report["resume_step"] == "search_flights"

    result = invoke(db_url, llm_env(fake_llm), run_id)
    assert result.exit_code == 0, result.output
    assert "The flight search API refused connections" in result.output
    assert "resume at  search_flights" in result.output
    assert "Restore the flight API" in result.output
    assert len(fake_llm.requests) == 1  # the second call showed the current report


def test_diagnose_history_lists_the_runs_reports_newest_first(
    db_url: str,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    run_id = run_uuid(manager, seed_run())
    env = llm_env(fake_llm, OTEL_DIAG_DIAGNOSIS="rules")
    empty = invoke(db_url, env, run_id, "--history")
    assert empty.exit_code == 0 and "has no diagnosis yet" in empty.output
    made = [json.loads(invoke(db_url, env, run_id, "--force", "--json").output) for _ in range(2)]

    listed = json.loads(invoke(db_url, env, run_id[:8], "--history", "--json").output)
    assert listed["run_id"] == run_id
    assert [r["id"] for r in listed["reports"]] == [made[1]["id"], made[0]["id"]]
    printed = {k: v for k, v in made[1].items() if k != "trace_url"}  # once, on the list
    assert listed["reports"][0] == printed  # complete, as `diagnose --json` printed it
    one = json.loads(invoke(db_url, env, run_id, "--history", "--limit", "1", "--json").output)
    assert [r["id"] for r in one["reports"]] == [made[1]["id"]]
    readable = invoke(db_url, env, run_id, "--history")
    assert readable.output.count("Diagnosis (") == 2
    assert report_counts(manager)[run_id] == 2  # --history diagnosed nothing
    both = invoke(db_url, env, run_id, "--history", "--force")
    assert both.exit_code == 1 and "--history" in both.output


def test_diagnose_reports_user_errors_on_one_line(
    db_url: str, fake_llm: FakeOpenAI, seed_run: Callable[..., str]
) -> None:
    seed_run()
    result = invoke(db_url, llm_env(fake_llm), "ffffffffffff")
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: no run matches 'ffffffffffff'")
    assert len(result.output.strip().splitlines()) == 1

    result = invoke(db_url, llm_env(fake_llm), "abc", "--worker")
    assert result.exit_code == 1 and "not both" in result.output


def test_diagnose_worker_once_diagnoses_every_ready_run(
    db_url: str,
    manager: TenantDBManager,
    fake_llm: FakeOpenAI,
    seed_run: Callable[..., str],
) -> None:
    runs = [run_uuid(manager, seed_run()) for _ in range(2)]
    env = llm_env(fake_llm, OTEL_DIAG_DIAGNOSIS="rules")
    result = invoke(db_url, env, "--worker", "--once")
    assert result.exit_code == 0, result.output
    assert "diagnosed 2 run(s)" in result.output
    assert report_counts(manager) == {r: 1 for r in runs}
    assert fake_llm.requests == []


def test_diagnose_worker_runs_until_sigterm(
    db_url: str,
    manager: TenantDBManager,
    seed_run: Callable[..., str],
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "OTEL_DIAG_DIAGNOSIS": "rules",
        "OTEL_DIAG_DECISION_WAIT": "0",
        "OTEL_DIAG_DATABASE_URL": db_url,
    }
    cli = Path(sys.executable).with_name("otel-diag")
    with subprocess.Popen(
        [str(cli), "diagnose", "--worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            run_id = run_uuid(manager, seed_run())
            assert poll(lambda: report_counts(manager).get(run_id) == 1, timeout=20)
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "diagnosis worker" in output and "1 report(s) stored" in output
