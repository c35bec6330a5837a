"""litellm never downloads its price map in a process where otel-diag is loaded.

litellm fetches ``model_prices_and_context_window.json`` from GitHub when it is imported,
unless ``LITELLM_LOCAL_MODEL_COST_MAP`` is true. A user's shell does not set it, so these
tests run apps without it and point ``LITELLM_MODEL_COST_MAP_URL`` at a loopback server that
records every request: a fetch attempt is a request there, whatever the network allows.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
FETCH_WARNING = "Failed to fetch remote model cost map"

APP = textwrap.dedent(
    """
    \"\"\"A user's app: it uses litellm and knows nothing of otel-diag.\"\"\"
    import litellm

    reply = litellm.completion(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "plan a trip"}],
        mock_response="Lisbon, then Tokyo",
    )
    print(reply.choices[0].message.content)
    """
)


class PriceMapServer:
    """A loopback stand-in for litellm's price map URL that records each request's path.

    It answers with litellm's own bundled map, so a process that does fetch gets a valid map
    at once (no retries) and the test sees exactly the requests it made.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._body = _bundled_price_map()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/model_prices_and_context_window.json"

    def __enter__(self) -> PriceMapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(server._body)))
                self.end_headers()
                self.wfile.write(server._body)

        return Handler


def _bundled_price_map() -> bytes:
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.origin is not None
    return (Path(spec.origin).parent / "model_prices_and_context_window_backup.json").read_bytes()


@pytest.fixture
def price_map() -> Iterator[PriceMapServer]:
    with PriceMapServer() as server:
        yield server


def _user_env(price_map: PriceMapServer, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no litellm setting, no OTel or otel-diag ones."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LITELLM_")) or k == "OTEL_DIAG_HOME"
    }
    return {**env, "LITELLM_MODEL_COST_MAP_URL": price_map.url, **extra}


@pytest.mark.timeout(120)
def test_an_instrumented_app_using_litellm_never_fetches_prices_and_its_step_is_priced(
    tmp_path: Path, price_map: PriceMapServer
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    db = tmp_path / "app.db"
    env = _user_env(price_map, OTEL_DIAG_DATABASE_URL=f"sqlite:///{db}")
    proc = subprocess.run(
        [str(INSTRUMENT), "--traces_exporter", "otel_diag", sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "Lisbon, then Tokyo"
    assert price_map.requests == []
    assert FETCH_WARNING not in proc.stderr
    with sqlite3.connect(db) as conn:
        step = conn.execute(
            "SELECT step_name, model, input_tokens, output_tokens, cost_usd FROM steps"
        ).fetchone()
    assert step is not None, proc.stderr[-3000:]
    name, model, input_tokens, output_tokens, cost = step
    assert (name, model) == ("chat gpt-4o-mini", "gpt-4o-mini")
    assert input_tokens and output_tokens
    assert cost is not None and cost > 0


@pytest.mark.timeout(120)
def test_a_users_own_litellm_price_setting_wins(price_map: PriceMapServer) -> None:
    """``LITELLM_LOCAL_MODEL_COST_MAP=False`` is the user's choice: litellm fetches, once."""
    proc = subprocess.run(
        [sys.executable, "-c", "import otel_diag, litellm"],
        env=_user_env(price_map, LITELLM_LOCAL_MODEL_COST_MAP="False"),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert price_map.requests == ["/model_prices_and_context_window.json"]
