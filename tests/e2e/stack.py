"""Jaeger v2, the gateway collector and ``otel-diag serve`` on loopback; ``make stack``.

The end-to-end tests and ``make stack`` start the same three real processes with the
functions here. The collector runs a *shipped* config (``collector_config/*.yaml``) with only
its addresses and paths changed by :func:`localize_collector_config`.

``python -m tests.e2e.stack`` (``make stack``) builds the peers if needed, starts all three,
prints the URLs and stays up until Ctrl-C, which stops all three.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.processes import Proc, child_env, free_port, listening, port_is_free, wait_until

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector_config"
JAEGER_CONFIG = Path(__file__).with_name("jaeger.yaml")
E2E_API_KEY = "e2e-only-key"  # serve runs with API keys, as in deploy/; the collector sends it


def otel_diag_command() -> list[str]:
    """``otel-diag`` of this interpreter's environment."""
    script = Path(sys.executable).with_name("otel-diag")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from otel_diag.cli import main; main()"]


# --- the collector config, localized ---------------------------------------------------------


def localize_collector_config(
    cfg: Mapping[str, Any],
    *,
    endpoints: Mapping[str, str],
    queue_dir: Path,
    static_replicas: Mapping[str, Sequence[str]] | None = None,
    decision_wait: str | None = None,
) -> dict[str, Any]:
    """A shipped collector config with its addresses and paths pointed at loopback.

    Only these change:

    * every ``endpoint`` value, from ``endpoints`` keyed by the dotted path of the mapping that
      holds it (``receivers.otlp.protocols.grpc``, ``exporters.otlp_grpc/jaeger``,
      ``extensions.health_check``...). An endpoint without an entry raises ``KeyError``: no
      production host name or fixed port survives by accident;
    * the ``directory`` of every ``file_storage`` extension, to a folder under ``queue_dir``;
    * for each exporter in ``static_replicas``, its ``load_balancing`` DNS resolver becomes a
      static list of loopback replicas (the same routing, without DNS);
    * the collector's own metrics listener (``:8888`` by default) is turned off, so that
      several collectors and Jaeger can run side by side;
    * ``tail_sampling.decision_wait``, when ``decision_wait`` is given (tests wait less).
    """
    out: dict[str, Any] = copy.deepcopy(dict(cfg))

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key == "endpoint" and isinstance(value, str):
                node[key] = endpoints[".".join(path)]
            else:
                walk(value, (*path, str(key)))

    walk(out, ())
    for name, ext in (out.get("extensions") or {}).items():
        if name.split("/", 1)[0] == "file_storage":
            directory = queue_dir / name.replace("/", "_")
            directory.mkdir(parents=True, exist_ok=True)
            ext["directory"] = str(directory)
    for exporter, replicas in (static_replicas or {}).items():
        out["exporters"][exporter]["resolver"] = {"static": {"hostnames": list(replicas)}}
    out["service"].setdefault("telemetry", {})["metrics"] = {"level": "none"}
    if decision_wait is not None:
        out["processors"]["tail_sampling"]["decision_wait"] = decision_wait
    return out


# --- the three processes ---------------------------------------------------------------------


@dataclass
class Jaeger:
    proc: Proc
    query_port: int
    otlp_grpc_port: int
    otlp_http_port: int
    tempo_stand_in_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"


def start_jaeger(
    binary: Path, workdir: Path, *, query_port: int | None = None, ui_assets: str = ""
) -> Jaeger:
    """Jaeger v2 with ``tests/e2e/jaeger.yaml`` (in-memory storage), ready to query."""
    ports = {
        "JAEGER_QUERY_HTTP_PORT": query_port or free_port(),
        "JAEGER_QUERY_GRPC_PORT": free_port(),
        "JAEGER_OTLP_GRPC_PORT": free_port(),
        "JAEGER_OTLP_HTTP_PORT": free_port(),
        "JAEGER_TEMPO_STAND_IN_PORT": free_port(),
    }
    env = child_env(JAEGER_UI_ASSETS=ui_assets, **{k: str(v) for k, v in ports.items()})
    proc = Proc("jaeger", [str(binary), f"--config={JAEGER_CONFIG}"], workdir / "jaeger.log", env)
    jaeger = Jaeger(
        proc.start(),
        ports["JAEGER_QUERY_HTTP_PORT"],
        ports["JAEGER_OTLP_GRPC_PORT"],
        ports["JAEGER_OTLP_HTTP_PORT"],
        ports["JAEGER_TEMPO_STAND_IN_PORT"],
    )
    wait_until(
        lambda: (
            httpx.get(f"{jaeger.url}/api/services", timeout=2).status_code == 200
            and listening(jaeger.otlp_grpc_port)
            and listening(jaeger.tempo_stand_in_port)
        ),
        timeout=60,
        what="Jaeger's query API and OTLP receivers",
        procs=[proc],
    )
    return jaeger


@dataclass
class OtelDiag:
    proc: Proc
    grpc_port: int
    http_port: int
    database_url: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {E2E_API_KEY}"}, timeout=30
        )

    def restart(self) -> OtelDiag:
        """Start again on the same ports and database (after :meth:`Proc.stop`)."""
        wait_until(
            lambda: port_is_free(self.grpc_port) and port_is_free(self.http_port),
            timeout=30,
            what="otel-diag's ports to be released",
        )
        self.proc = Proc(self.proc.name, self.proc.argv, self.proc.log, self.env).start()
        wait_ready(self)
        return self


def wait_ready(diag: OtelDiag) -> None:
    wait_until(
        lambda: httpx.get(f"{diag.url}/readyz", timeout=2).status_code == 200,
        timeout=60,
        what=f"{diag.proc.name} /readyz",
        procs=[diag.proc],
    )


def start_otel_diag(
    workdir: Path,
    *,
    name: str = "otel-diag",
    jaeger: Jaeger | None = None,
    diagnosis_endpoint: str | None = None,
    grpc_port: int | None = None,
    http_port: int | None = None,
    decision_wait: str = "1",
    **env: str,
) -> OtelDiag:
    """``otel-diag serve`` as a real subprocess on loopback, over its own SQLite file.

    It runs with API keys (as in ``deploy/``), rules diagnosis, a short decision wait, trace
    links to ``jaeger``, and sends its diagnosis spans over OTLP/HTTP to
    ``diagnosis_endpoint`` (the collector, in the tests) when given.
    """
    grpc_port = grpc_port or free_port()
    http_port = http_port or free_port()
    database_url = f"sqlite:///{workdir / (name + '.db')}"
    settings = {
        "OTEL_DIAG_HOME": str(workdir / f"{name}-home"),
        "OTEL_DIAG_API_KEYS": f"default:{E2E_API_KEY}",
        "OTEL_DIAG_DIAGNOSIS": "rules",
        "OTEL_DIAG_DECISION_WAIT": decision_wait,
    }
    if jaeger is not None:
        settings["OTEL_DIAG_TRACE_URL_TEMPLATE"] = f"{jaeger.url}/trace/{{trace_id}}"
    if diagnosis_endpoint is not None:
        settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = diagnosis_endpoint
        settings["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    settings.update(env)
    full_env = child_env(**settings)
    argv = [
        *otel_diag_command(),
        "serve",
        "--host=127.0.0.1",
        f"--grpc-port={grpc_port}",
        f"--http-port={http_port}",
        f"--database-url={database_url}",
        "--log-level=warning",
    ]
    proc = Proc(name, argv, workdir / f"{name}.log", full_env).start()
    diag = OtelDiag(proc, grpc_port, http_port, database_url, full_env)
    wait_ready(diag)
    return diag


@dataclass
class Collector:
    proc: Proc
    otlp_grpc_port: int
    otlp_http_port: int
    health_port: int
    prometheus_port: int
    config_path: Path

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"


def start_collector(
    binary: Path,
    workdir: Path,
    *,
    config: str,
    jaeger: Jaeger,
    otel_diag: Sequence[OtelDiag],
    otlp_grpc_port: int | None = None,
    otlp_http_port: int | None = None,
    decision_wait: str | None = "2s",
    queue_dir: Path | None = None,
) -> Collector:
    """The collector with ``collector_config/<config>`` localized to these processes.

    ``gateway.yaml`` takes one otel-diag, ``scale-out.yaml`` the replicas its load_balancing
    exporter routes to. ``otlp_grpc/tempo`` goes to Jaeger's Tempo stand-in port.
    """
    cfg = yaml.safe_load((CONFIGS / config).read_text())
    grpc_port = otlp_grpc_port or free_port()
    http_port = otlp_http_port or free_port()
    health_port, prometheus_port = free_port(), free_port()
    endpoints = {
        "extensions.health_check": f"127.0.0.1:{health_port}",
        "receivers.otlp.protocols.grpc": f"127.0.0.1:{grpc_port}",
        "receivers.otlp.protocols.http": f"127.0.0.1:{http_port}",
        "exporters.otlp_grpc/otel_diag": otel_diag[0].grpc_endpoint,
        "exporters.otlp_grpc/jaeger": f"127.0.0.1:{jaeger.otlp_grpc_port}",
        "exporters.otlp_grpc/tempo": f"127.0.0.1:{jaeger.tempo_stand_in_port}",
        "exporters.prometheus": f"127.0.0.1:{prometheus_port}",
    }
    local = localize_collector_config(
        cfg,
        endpoints=endpoints,
        queue_dir=queue_dir or workdir / "collector-queue",
        static_replicas={"load_balancing/otel_diag": [d.grpc_endpoint for d in otel_diag]}
        if "load_balancing/otel_diag" in cfg["exporters"]
        else None,
        decision_wait=decision_wait,
    )
    path = workdir / f"collector-{config}"
    path.write_text(yaml.safe_dump(local, sort_keys=False))
    env = child_env(OTEL_DIAG_API_KEY=E2E_API_KEY)
    proc = Proc("collector", [str(binary), f"--config={path}"], workdir / "collector.log", env)
    proc.start()
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{health_port}/", timeout=2).status_code == 200,
        timeout=60,
        what="the collector's health_check",
        procs=[proc],
    )
    return Collector(proc, grpc_port, http_port, health_port, prometheus_port, path)


# --- make stack ------------------------------------------------------------------------------


# A person's diagnosis settings reach the stack's otel-diag (the tests pass none).
PASSED_THROUGH = (
    "OTEL_DIAG_DIAGNOSIS",
    "OTEL_DIAG_LLM_MODEL",
    "OTEL_DIAG_LLM_API_BASE",
    "OTEL_DIAG_LLM_API_KEY",
)


def _preferred(port: int) -> int:
    return port if port_is_free(port) else free_port()


def main(argv: Sequence[str] | None = None) -> int:
    from tests.peers import PeerBuildError, build_peer

    parser = argparse.ArgumentParser(prog="make stack", description=__doc__)
    parser.add_argument("--workdir", help="logs, SQLite database and collector queue")
    parser.add_argument(
        "--jaeger-ui-assets",
        default=os.environ.get("JAEGER_UI_ASSETS", ""),
        help="a built jaeger-ui directory (default: $JAEGER_UI_ASSETS; none ships here)",
    )
    args = parser.parse_args(argv)
    try:
        jaeger_bin, otelcol_bin = build_peer("jaeger"), build_peer("otelcol")
    except PeerBuildError as exc:
        print(f"make stack: {exc}", file=sys.stderr)
        return 1
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="otel-diag-stack-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[Proc] = []
    try:
        jaeger = start_jaeger(
            jaeger_bin, workdir, query_port=_preferred(16686), ui_assets=args.jaeger_ui_assets
        )
        started.append(jaeger.proc)
        grpc_port, http_port = _preferred(4317), _preferred(4318)
        diag = start_otel_diag(
            workdir,
            jaeger=jaeger,
            diagnosis_endpoint=f"http://127.0.0.1:{http_port}",
            grpc_port=_preferred(14317) if grpc_port == 4317 else None,
            http_port=_preferred(14318) if http_port == 4318 else None,
            decision_wait=os.environ.get("OTEL_DIAG_DECISION_WAIT", "5"),
            **{k: v for k, v in os.environ.items() if k in PASSED_THROUGH},
        )
        started.append(diag.proc)
        collector = start_collector(
            otelcol_bin,
            workdir,
            config="gateway.yaml",
            jaeger=jaeger,
            otel_diag=[diag],
            otlp_grpc_port=grpc_port,
            otlp_http_port=http_port,
        )
        started.append(collector.proc)
        print(
            f"""
otel-diag stack on loopback (logs, database and queue in {workdir}):
  Jaeger UI          {jaeger.url}/{"" if args.jaeger_ui_assets else "  (placeholder page: no UI assets, see README)"}
  Jaeger API         {jaeger.url}/api/services , {jaeger.url}/api/traces/<trace id>
  send OTLP to       grpc {collector.grpc_endpoint}   http {collector.http_endpoint}   (the gateway collector)
  otel-diag API      {diag.url}/api/runs   (Authorization: Bearer {E2E_API_KEY})   docs {diag.url}/docs
  otel-diag OTLP     grpc {diag.grpc_endpoint}   http {diag.url}   (what the collector sends to)
  collector health   http://127.0.0.1:{collector.health_port}/   span metrics http://127.0.0.1:{collector.prometheus_port}/metrics
Try: OTEL_DIAG_DEMO_URL={diag.url} OTEL_DIAG_DEMO_GRPC=http://{collector.grpc_endpoint} \\
       OTEL_DIAG_API_KEY={E2E_API_KEY} make demo
Ctrl-C stops all three.""",
            flush=True,
        )
        stop = False

        def on_signal(signum: int, frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop:
            dead = [p.name for p in started if not p.alive]
            if dead:
                print(f"make stack: {', '.join(dead)} exited; see {workdir}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    except AssertionError as exc:
        print(f"make stack: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(started):
            code = proc.stop()
            print(f"stopped {proc.name} (exit {code})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
