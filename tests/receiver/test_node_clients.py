"""The Node.js OpenTelemetry SDK's official OTLP exporters (gRPC and HTTP/protobuf) against serve.

The test set-up installs the pinned npm packages of ``tests/receiver/node`` (package.json and
package-lock.json) once, when ``node_modules`` is missing. Without node/npm the test skips
locally and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.receiver.harness import Running

NODE_DIR = Path(__file__).with_name("node")


@pytest.fixture(scope="session")
def node_client() -> Path:
    """The directory of ``send.js`` with its npm dependencies installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if IN_CI:
            pytest.fail("node/npm not found (CI=true: the Node.js client test must run)")
        pytest.skip("node/npm not found")
    if not (NODE_DIR / "node_modules" / "@opentelemetry" / "sdk-trace").is_dir():
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm install failed: {proc.stderr[-2000:]}")
    return NODE_DIR


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_node_sdk_exporters_are_stored_like_python_ones(
    serve: Callable[..., Running], node_client: Path, protocol: str
) -> None:
    srv = serve()
    endpoint = f"http://{srv.grpc_target}" if protocol == "grpc" else f"{srv.http_url}/v1/traces"
    run_id = f"node-{protocol}-run"
    proc = subprocess.run(
        ["node", "send.js", protocol, endpoint, run_id],
        cwd=node_client,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "ok": True,
        "spans": 4,
        "error": None,
    }
    run = srv.http.get("/api/runs").json()["runs"][0]
    assert (run["name"], run["status"], run["service_name"]) == (
        "invoke_workflow node-trip",
        "failed",
        f"node-agent-{protocol}",
    )
    assert (run["llm_calls"], run["tool_calls"], run["input_tokens"]) == (1, 1, 420)
    errors = srv.http.get(f"/api/runs/{run_id}/errors").json()["errors"]
    assert {e["error_type"] for e in errors} >= {"TypeError"}
    assert any("reading 'rooms'" in e["error_message"] for e in errors)
