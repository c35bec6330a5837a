"""What an application pays for otel-diag: the app-side API loads no SQLAlchemy and no litellm.

Each check runs in a fresh interpreter (``sys.modules`` of this test process already holds
everything) and looks at ``sys.modules`` after each step an app takes: ``import otel_diag``,
the decorators, ``configure()`` with the default in-process exporter, and recording a caught
exception with ``ErrorCollector``. The store is loaded by the exporter's first export, which
happens on the SDK's export thread, never in the app's own calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "litellm")

APP = r"""
import json, sys

HEAVY = {heavy!r}
steps = {{}}

def snapshot(name):
    steps[name] = {{"loaded": len(sys.modules), "heavy": [m for m in HEAVY if m in sys.modules]}}

import otel_diag
snapshot("import otel_diag")
from otel_diag import agent, run, step, tool
snapshot("decorators")

@tool
def lookup(sku: str) -> str:
    return sku

with run("checkout", run_id="r-1"), step("reserve"):
    lookup("a")
snapshot("decorated calls")
provider = otel_diag.configure(service_name="import-cost")
snapshot("configure()")
from opentelemetry import trace

with trace.get_tracer("app").start_as_current_span("work"):
    try:
        raise TimeoutError("inventory timed out")
    except TimeoutError as exc:
        otel_diag.ErrorCollector().log_exception(exc)
snapshot("ErrorCollector().log_exception()")
provider.force_flush()
snapshot("after the first export")
print(json.dumps(steps))
"""


def _run_app(tmp_path: Path) -> dict[str, dict[str, object]]:
    env = {
        **os.environ,
        "OTEL_DIAG_HOME": str(tmp_path),
        "OTEL_DIAG_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
    }
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-c", APP.format(heavy=HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    steps: dict[str, dict[str, object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return steps


def test_the_app_side_api_loads_neither_sqlalchemy_nor_litellm(tmp_path: Path) -> None:
    steps = _run_app(tmp_path)
    app_side = [
        "import otel_diag",
        "decorators",
        "decorated calls",
        "configure()",
        "ErrorCollector().log_exception()",
    ]
    assert {name: steps[name]["heavy"] for name in app_side} == {name: [] for name in app_side}
    bare = len(_modules_of_a_bare_interpreter())
    assert int(steps["import otel_diag"]["loaded"]) - bare < 20  # type: ignore[call-overload]
    # The measurement can fail: the exporter's first export does load the store.
    assert "sqlalchemy" in steps["after the first export"]["heavy"]  # type: ignore[operator]
    assert (tmp_path / "app.db").exists()


def _modules_of_a_bare_interpreter() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(done.stdout)
    return modules
