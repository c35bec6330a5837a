"""Zero-code: an agent that never imports otel_diag, run under ``opentelemetry-instrument``.

Our instrumentor is applied through its ``otel_diag_litellm`` entry point, the ``otel_diag``
exporter through ``--traces_exporter``, and otel-diag's post-instrument hook adds the
run-baggage processor. The script sets the run id in W3C baggage (as an upstream service would have sent it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_diag.projection.ids import run_uuid
from otel_diag.rows import to_json
from otel_diag.store.sql.engine import TenantDBManager
from tests.fakes.openai_server import FakeOpenAI, Reply

SCRIPT = textwrap.dedent(
    '''
    """A sample agent: the first LLM call works, the second is rate limited and fails."""
    import sys

    import litellm
    from opentelemetry import baggage, context, trace

    litellm.suppress_debug_info = True
    tracer = trace.get_tracer("sample.agent")


    def ask(question):
        return litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=sys.argv[1],
            api_key="sk-sample-secret-key-1234567890",
            messages=[{"role": "user", "content": question}],
            max_retries=0,
        )


    context.attach(baggage.set_baggage("otel_diag.run.id", "sample-run-1"))
    with tracer.start_as_current_span(
        "invoke_agent sampler",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "sampler"},
    ):
        ask("plan a trip")
        ask("and book it")
    '''
)
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "server_env",
    [{}, {"OTEL_DIAG_LLM_TIMEOUT": "abc", "OTEL_DIAG_DIAGNOSIS": "sometimes"}],
    ids=["plain", "bad-server-settings"],
)
def test_agent_under_opentelemetry_instrument_gets_error_rows_tokens_and_cost(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    """Also with bad values of the server's variables, which the app's telemetry never
    depends on: instrumentors applied, spans stored, at most one warning per bad value."""
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    db = tmp_path / "x.db"
    env = {
        **os.environ,
        "OTEL_DIAG_DATABASE_URL": f"sqlite:///{db}",
        "OTEL_SERVICE_NAME": "sample-agent",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **server_env,
    }
    with FakeOpenAI() as server:
        server.script(
            Reply(content="Lisbon, then Tokyo"), Reply(status=429, error_message="slow down")
        )
        proc = subprocess.run(
            [
                str(INSTRUMENT),
                "--traces_exporter",
                "otel_diag",
                sys.executable,
                str(script),
                server.url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "RateLimitError" in proc.stderr
    assert "Failed to auto initialize" not in proc.stderr
    lines = proc.stderr.splitlines()
    for var in server_env:
        assert len([line for line in lines if var in line]) <= 1, proc.stderr[-3000:]

    manager = TenantDBManager(f"sqlite:///{db}")
    try:
        store = manager.tenant()
        rid = run_uuid("sample-run-1", "0" * 32)
        found = store.run(rid)
        run_row = to_json(found) if found else None
        steps = [to_json(s) for s in store.steps(rid)]
        errors = [to_json(e) for e in store.errors(rid)]
    finally:
        manager.dispose()
    assert run_row is not None, "the run id did not reach the spans (baggage processor)"
    assert run_row["service_name"] == "sample-agent"
    assert run_row["status"] == "failed"
    llm_steps = [s for s in steps if s["kind"] == "llm"]
    assert sorted(s["status"] for s in llm_steps) == ["error", "ok"]
    ok = next(s for s in llm_steps if s["status"] == "ok")
    assert (ok["model"], ok["input_tokens"], ok["output_tokens"]) == ("gpt-4o-mini", 11, 7)
    assert ok["cost_usd"] > 0 and ok["cost_source"] == "reported"
    assert run_row["input_tokens"] == 11 and run_row["cost_usd"] == pytest.approx(ok["cost_usd"])
    # One failure: the script's own span ("sampler", plain OTel) only re-recorded it.
    assert [
        (e["step_name"], e["source"], e["error_category"], e["model"], e["propagated_to"])
        for e in errors
    ] == [("chat gpt-4o-mini", "llm", "rate_limit", "gpt-4o-mini", ["sampler"])]
    assert "sk-sample-secret-key-1234567890" not in str(errors)
