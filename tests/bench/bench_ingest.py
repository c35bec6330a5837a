"""End-to-end OTLP/gRPC ingest: ``otel-diag serve`` vs a parse-and-acknowledge ceiling.

200k spans (20k agent traces of 10 spans, 10 % of traces failing) are pre-serialized into
OTLP requests of 2,000 spans and sent by a grpc.aio client with several requests in flight,
resending on UNAVAILABLE as a collector would. Each server runs in its own process (so the
client never competes with it for the GIL):

* ceiling: a minimal grpc.aio server that parses each request and answers (no storage);
* otel-diag on SQLite and on PostgreSQL (a fresh database on the machine's server).

A 2xx from otel-diag means the spans are stored, so "accepted" is also "persisted"; after
the run the bench checks that every step and error row is queryable. Peak RSS of the server
is read from ``/proc/<pid>/status`` (VmHWM). Figures only: no assertion on timing.

``python -m tests.bench ingest`` runs it alone; ``BENCH_INGEST_SPANS`` scales the load.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from sqlalchemy import create_engine, func, select

from otel_diag.store.sql.models import error_logs, steps
from tests.bench.scratch import create_pg_database, drop_pg_database

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS = int(os.environ.get("BENCH_INGEST_SPANS", "200000"))
SPANS_PER_TRACE = 10
SPANS_PER_REQUEST = 2000


def _kv(key: str, value: object) -> common_pb2.KeyValue:
    v = common_pb2.AnyValue()
    if isinstance(value, int):
        v.int_value = value
    else:
        v.string_value = str(value)
    return common_pb2.KeyValue(key=key, value=v)


def _add_span(
    ss: object,
    sid: bytes,
    tid: bytes,
    start: int,
    parent: bytes,
    name: str,
    attrs: dict[str, object],
    err: bool,
) -> bytes:
    sp = ss.spans.add(  # type: ignore[attr-defined]
        trace_id=tid,
        span_id=sid,
        parent_span_id=parent,
        name=name,
        kind=1,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 900_000,
    )
    sp.attributes.extend(_kv(k, v) for k, v in attrs.items())
    if err:
        sp.status.code = 2
        sp.status.message = "upstream timed out"
        ev = sp.events.add(name="exception", time_unix_nano=start + 500_000)
        ev.attributes.extend(
            [
                _kv("exception.type", "TimeoutError"),
                _kv("exception.message", "search API timed out after 30s"),
                _kv("exception.stacktrace", "Traceback (most recent call last):\n  ..."),
            ]
        )
    return sid


def build_requests(total: int, seed: int = 7) -> tuple[list[bytes], int, int]:
    """Serialized requests; returns (bodies, expected step rows, expected error rows)."""
    rng = random.Random(seed)
    traces = total // SPANS_PER_TRACE
    per_request = SPANS_PER_REQUEST // SPANS_PER_TRACE
    bodies: list[bytes] = []
    expected_steps = expected_errors = 0
    t0 = time.time_ns() - 3600 * 10**9
    for first in range(0, traces, per_request):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", "bench-agent")])
        ss = rs.scope_spans.add()
        for t in range(first, min(traces, first + per_request)):
            tid = rng.randbytes(16)
            failing = t % 10 == 0
            start = t0 + t * 1_000_000

            def span(
                parent: bytes, name: str, attrs: dict[str, object], err: bool = False
            ) -> bytes:
                return _add_span(ss, rng.randbytes(8), tid, start, parent, name, attrs, err)  # noqa: B023

            root = span(b"", "invoke_workflow bench", {"otel_diag.run.id": f"bench-{t}"}, failing)
            agent = span(
                root,
                "invoke_agent planner",
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
                failing,
            )
            for _ in range(3):
                span(
                    agent,
                    "chat gpt-4o-mini",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 800,
                        "gen_ai.usage.output_tokens": 60,
                    },
                )
            for i in range(3):
                span(
                    agent,
                    "execute_tool search",
                    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                    failing and i == 2,
                )
            for _ in range(2):
                span(agent, "GET", {"http.request.method": "GET", "url.full": "https://api/x"})
            expected_steps += 7  # agent + 3 llm + 3 tools (the root and HTTP spans are not steps)
            # The tool's exception, recorded again by the agent and the root as it
            # propagated: one failure, one error row.
            expected_errors += 1 if failing else 0
        bodies.append(req.SerializeToString())
    return bodies, expected_steps, expected_errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _peak_rss_mib(pid: int) -> float:
    """Peak RSS (VmHWM) of a process plus its worker processes, in MiB."""
    total = 0
    for proc in (pid, *_descendants(pid)):
        try:
            status = Path(f"/proc/{proc}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


@dataclass
class SendResult:
    seconds: float
    refused: int


async def _send(
    target: str, bodies: list[bytes], concurrency: int, channels: int = 1
) -> SendResult:
    """Send every body with ``concurrency`` requests in flight over ``channels`` connections."""
    refused = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    opened = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    calls = [ch.unary_unary(EXPORT) for ch in opened]
    try:

        async def worker(call: grpc.aio.UnaryUnaryMultiCallable) -> None:
            nonlocal refused
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    try:
                        await call(body, timeout=120)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        refused += 1
                        await asyncio.sleep(0.05)

        started = time.perf_counter()
        await asyncio.gather(*(worker(calls[i % channels]) for i in range(concurrency)))
        return SendResult(time.perf_counter() - started, refused)
    finally:
        for ch in opened:
            await ch.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_ceiling(bodies: list[bytes], concurrency: int) -> tuple[float, float]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_ingest", "--ceiling", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc)
        result = asyncio.run(_send(f"127.0.0.1:{port}", bodies, concurrency))
        return result.seconds, _peak_rss_mib(proc.pid)
    finally:
        _stop(proc)


def run_otel_diag(
    url: str,
    bodies: list[bytes],
    concurrency: int,
    env: dict[str, str] | None = None,
    channels: int = 1,
) -> tuple[SendResult, float]:
    grpc_port, http_port = _free_port(), _free_port()
    cmd = [str(Path(sys.executable).with_name("otel-diag")), "serve", "--no-background"]
    cmd += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    cmd += ["--database-url", url, "--log-level", "warning"]
    home = tempfile.mkdtemp(prefix="otel-diag-bench-home-")
    full_env = {**os.environ, "OTEL_DIAG_HOME": home, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    full_env.update(env or {})
    proc = subprocess.Popen(cmd, env=full_env)
    try:
        _wait_port(grpc_port, proc)
        result = asyncio.run(_send(f"127.0.0.1:{grpc_port}", bodies, concurrency, channels))
        return result, _peak_rss_mib(proc.pid)
    finally:
        _stop(proc)


def _count(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            n_steps = conn.execute(select(func.count()).select_from(steps)).scalar_one()
            n_errors = conn.execute(select(func.count()).select_from(error_logs)).scalar_one()
    finally:
        engine.dispose()
    return int(n_steps), int(n_errors)


def main() -> None:
    started = time.perf_counter()
    bodies, want_steps, want_errors = build_requests(SPANS)
    spans = len(bodies) * SPANS_PER_REQUEST
    mib = sum(map(len, bodies)) / 2**20
    print(
        f"load: {spans} spans in {len(bodies)} requests of {SPANS_PER_REQUEST} "
        f"({mib:.1f} MiB protobuf), 10% of traces failing; built in "
        f"{time.perf_counter() - started:.1f}s; load average {os.getloadavg()[0]:.1f}"
    )
    concurrency = 4
    ceiling_s, ceiling_rss = run_ceiling(bodies, concurrency)
    ceiling = spans / ceiling_s
    print(
        f"ceiling (parse + ack, no storage): {ceiling:,.0f} spans/s, peak RSS {ceiling_rss:.0f} MiB"
    )
    for backend in ("sqlite", "postgresql"):
        for processes in (0, 2):
            try:
                rate, line = _run_one(
                    backend, processes, bodies, concurrency, want_steps, want_errors
                )
            except Exception as exc:  # e.g. no PostgreSQL here: report, go on
                print(f"{backend}: failed ({type(exc).__name__}: {exc})")
                continue
            print(f"{line}, {rate / ceiling:.1%} of the ceiling")
    _flood(bodies)


def _run_one(
    backend: str,
    processes: int,
    bodies: list[bytes],
    concurrency: int,
    want_steps: int,
    want_errors: int,
) -> tuple[float, str]:
    """One otel-diag server on a fresh database; returns (spans/s, report line)."""
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='otel-diag-bench-')}/bench.db"
    else:
        pg_name, url = create_pg_database()
    try:
        env = {"OTEL_DIAG_INGEST_PROCESSES": str(processes)}
        result, rss = run_otel_diag(url, bodies, concurrency, env=env)
        n_steps, n_errors = _count(url)
    finally:
        if pg_name:
            drop_pg_database(pg_name)
    spans = len(bodies) * SPANS_PER_REQUEST
    rate = spans / result.seconds
    ok = n_steps == want_steps and n_errors == want_errors
    mode = f"{processes} ingest processes" if processes else "ingest threads"
    return rate, (
        f"{backend} ({mode}): {rate:,.0f} spans/s accepted = persisted "
        f"({result.seconds:.1f}s, {result.refused} UNAVAILABLE resends); rows queryable: "
        f"steps {n_steps}/{want_steps}, errors {n_errors}/{want_errors} "
        f"{'OK' if ok else 'MISMATCH'}; peak RSS {rss:.0f} MiB"
    )


def _flood(bodies: list[bytes]) -> None:
    spans = len(bodies) * SPANS_PER_REQUEST
    # Clients far faster than the database: 48 requests in flight on 4 connections against
    # the default in-flight bound of 16; memory must stay bounded (refusals, no growing queue).
    tmp2 = tempfile.mkdtemp(prefix="otel-diag-bench-")
    result, rss = run_otel_diag(f"sqlite:///{tmp2}/flood.db", bodies, 48, channels=4)
    print(
        f"flood (48 in flight on 4 connections, SQLite): {spans / result.seconds:,.0f} spans/s, "
        f"{result.refused} requests refused with UNAVAILABLE and resent, peak RSS {rss:.0f} MiB"
    )


def _ceiling_server(port: int) -> None:
    """The baseline: grpc.aio, parse the request off the loop, answer an empty response."""
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    empty = ExportTraceServiceResponse().SerializeToString()
    pool = ThreadPoolExecutor(2)

    def parse(body: bytes) -> int:
        req = ExportTraceServiceRequest.FromString(body)
        return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)

    async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.get_running_loop().run_in_executor(pool, parse, body)
        return empty

    async def serve() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(serve())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--ceiling":
        _ceiling_server(int(sys.argv[2]))
    else:
        main()
