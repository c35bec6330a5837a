"""``opentelemetry-instrument`` with otel-diag alone, and next to ``opentelemetry-distro``.

Each case runs a real app under ``opentelemetry-instrument --traces_exporter otel_diag``: it
prints nothing on stderr at default verbosity, its span is stored under the run named in
W3C baggage (the run-baggage processor is installed whichever configurator ran), and the app
reports which configurator set the SDK up. ``opentelemetry-distro`` (the release matching
the installed ``opentelemetry-instrumentation``) is installed without dependencies into a
cache outside the work tree and put first on ``PYTHONPATH``, which makes its distro the one
``opentelemetry-instrument`` loads unless ``OTEL_PYTHON_DISTRO`` says otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

from otel_diag.projection.ids import run_uuid
from otel_diag.rows import to_json
from otel_diag.store.sql.engine import TenantDBManager
from tests.conftest import IN_CI

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
PIP_CACHE = Path.home() / ".cache" / "otel-diag" / "pip"
OURS = "otel_diag.sdk.distro:OtelDiagConfigurator"
THEIRS = "opentelemetry.distro:OpenTelemetryConfigurator"

APP = textwrap.dedent(
    """
    \"\"\"An app started by an upstream service's run; prints the configurators that ran.\"\"\"
    from opentelemetry import baggage, context, trace
    from opentelemetry.sdk._configuration import _BaseConfigurator


    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)


    context.attach(baggage.set_baggage("otel_diag.run.id", "distro-run"))
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    with trace.get_tracer("app").start_as_current_span("invoke_agent planner", attributes=attributes):
        pass
    ran = [c for c in subclasses(_BaseConfigurator) if c.__dict__.get("_instance") is not None]
    print(",".join(sorted(f"{c.__module__}:{c.__qualname__}" for c in ran)))
    """
)


@pytest.fixture(scope="session")
def opentelemetry_distro() -> Path:
    """A directory holding ``opentelemetry-distro``, for ``PYTHONPATH`` (installed once)."""
    release = version("opentelemetry-instrumentation")
    target = PIP_CACHE / f"opentelemetry-distro-{release}"
    if (target / "opentelemetry" / "distro" / "__init__.py").is_file():
        return target
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=PIP_CACHE))
    try:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
        proc = subprocess.run(
            [*pip, "--target", str(staging), f"opentelemetry-distro=={release}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode == 0:
            staging.rename(target)  # whole or not at all: a failed install caches nothing
            return target
        reason = (proc.stderr.strip().splitlines() or [f"pip exited {proc.returncode}"])[-1]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    message = f"could not install opentelemetry-distro=={release}: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: the coexistence test must run)", pytrace=False)
    pytest.skip(message)


def _run_app(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the app instrumented; returns the process and the database URL it wrote to."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("OTEL_") or k == "OTEL_DIAG_HOME"
    }
    proc = subprocess.run(
        [str(INSTRUMENT), "--traces_exporter", "otel_diag", sys.executable, str(app)],
        env={**base, "OTEL_DIAG_DATABASE_URL": url, "OTEL_SERVICE_NAME": "planner-svc", **env},
        capture_output=True,
        text=True,
        timeout=100,
    )
    return proc, url


def _assert_stored_under_the_baggage_run(url: str) -> None:
    manager = TenantDBManager(url)
    try:
        store = manager.tenant()
        rid = run_uuid("distro-run", "0" * 32)
        found = store.run(rid)
        run_row = to_json(found) if found else None
        steps = [to_json(s) for s in store.steps(rid)]
    finally:
        manager.dispose()
    assert run_row is not None, "the run id in baggage did not reach the span"
    assert run_row["service_name"] == "planner-svc"
    assert [(s["step_name"], s["kind"]) for s in steps] == [("planner", "agent")]


@pytest.mark.timeout(120)
def test_alone_our_distro_configures_the_sdk_and_prints_nothing(tmp_path: Path) -> None:
    proc, url = _run_app(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == OURS
    _assert_stored_under_the_baggage_run(url)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "distro",
    [
        pytest.param(None, id="their-distro-loaded-first"),
        pytest.param("otel_diag", id="OTEL_PYTHON_DISTRO=otel_diag"),
    ],
)
def test_next_to_opentelemetry_distro_its_configurator_runs_once_and_nothing_is_printed(
    tmp_path: Path, opentelemetry_distro: Path, distro: str | None
) -> None:
    pythonpath = os.pathsep.join(
        filter(None, [str(opentelemetry_distro), os.environ.get("PYTHONPATH")])
    )
    env = {"PYTHONPATH": pythonpath}
    if distro is not None:
        env["OTEL_PYTHON_DISTRO"] = distro
    proc, url = _run_app(tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == THEIRS
    _assert_stored_under_the_baggage_run(url)
