"""Memory of ``otel-diag serve`` under request floods, anonymous and authenticated.

The attack of issue 16: many large OTLP requests at once (``FLOOD_CALLS`` concurrent calls
of ``FLOOD_MIB`` MiB each, ``FLOOD_ROUNDS`` rounds) against a server in API-key mode, once
without a key (every call must be refused, and refusing must not cost the body) and once
with a valid key (admitted calls are bounded by the in-flight limit), on OTLP/gRPC and
OTLP/HTTP. Each flood gets a fresh server process; the figures are its peak RSS (VmHWM)
during the flood and its RSS after ``SETTLE_S`` seconds of quiet, next to the documented
bound. Figures only: nothing here asserts on time.

``python -m tests.bench floods`` runs it alone (``make bench`` runs every benchmark).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import grpc
import httpx

from tests.receiver.otlp import Span, to_protobuf
from tests.receiver.process import ServeProcess

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CALLS = int(os.environ.get("FLOOD_CALLS", "80"))
MIB = int(os.environ.get("FLOOD_MIB", "24"))
ROUNDS = int(os.environ.get("FLOOD_ROUNDS", "2"))
SETTLE_S = float(os.environ.get("FLOOD_SETTLE_S", "10"))
KEY = "flood-key-0123456789"


def flood_body(mib: int = MIB) -> bytes:
    """A valid OTLP request of about ``mib`` MiB: ``mib`` spans with a 1 MiB attribute each."""
    blob = "x" * (1024 * 1024 - 64)
    spans = [Span(f"big-{i}", attributes={"payload": blob}) for i in range(mib)]
    return to_protobuf(spans).SerializeToString()


async def grpc_flood(target: str, body: bytes, key: str | None, calls: int) -> Counter[str]:
    """``calls`` concurrent Export calls, each on its own connection, as an attacker would."""
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    options = [
        ("grpc.max_send_message_length", 256 * 1024 * 1024),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    results: Counter[str] = Counter()

    async def one() -> None:
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            try:
                await channel.unary_unary(EXPORT)(body, metadata=metadata, timeout=120)
                results["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                results[exc.code().name] += 1

    await asyncio.gather(*(one() for _ in range(calls)))
    return results


async def http_flood(url: str, body: bytes, key: str | None, calls: int) -> Counter[str]:
    headers = {"content-type": "application/x-protobuf"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    results: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=calls)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one() -> None:
            try:
                reply = await client.post("/v1/traces", content=body, headers=headers)
                results[str(reply.status_code)] += 1
            except httpx.HTTPError as exc:
                results[type(exc).__name__] += 1

        await asyncio.gather(*(one() for _ in range(calls)))
    return results


Flood = Callable[[str, bytes, str | None, int], Awaitable[Counter[str]]]


def run_flood(name: str, flood: Flood, body: bytes, key: str | None) -> None:
    scratch = tempfile.mkdtemp(prefix="otel-diag-flood-")
    url = f"sqlite:///{scratch}/flood.db"
    # OTEL_DIAG_* of the caller reach the server, to measure other limits than the defaults
    env = {k: v for k, v in os.environ.items() if k.startswith("OTEL_DIAG_")}
    env["OTEL_DIAG_API_KEYS"] = f"alpha:{KEY}"
    with ServeProcess(url, env=env) as srv:
        warm_up = to_protobuf([Span("warm-up")]).SerializeToString()  # price map, pools, caches
        headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {KEY}"}
        httpx.post(f"{srv.http_url}/v1/traces", content=warm_up, headers=headers).raise_for_status()
        before = srv.rss_mib()
        target = srv.grpc_target if flood is grpc_flood else srv.http_url
        outcomes: Counter[str] = Counter()
        started = time.perf_counter()
        for _ in range(ROUNDS):
            outcomes += asyncio.run(flood(target, body, key, CALLS))
        seconds = time.perf_counter() - started
        peak = srv.peak_rss_mib()
        time.sleep(SETTLE_S)
        after = srv.rss_mib()
    shutil.rmtree(scratch, ignore_errors=True)
    answers = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(
        f"{name}: {ROUNDS} x {CALLS} calls of {len(body) / 2**20:.0f} MiB in {seconds:.0f}s "
        f"({answers}); RSS {before:.0f} MiB before (warmed up), peak {peak:.0f} MiB, "
        f"{after:.0f} MiB after {SETTLE_S:.0f}s idle",
        flush=True,
    )


def main() -> None:
    body = flood_body()
    print(
        f"load: {ROUNDS} rounds of {CALLS} concurrent {len(body) / 2**20:.1f} MiB OTLP requests "
        f"per flood, one fresh server (SQLite, API-key mode) per flood; load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    run_flood("gRPC, no key", grpc_flood, body, None)
    run_flood("gRPC, valid key", grpc_flood, body, KEY)
    run_flood("HTTP, no key", http_flood, body, None)
    run_flood("HTTP, valid key", http_flood, body, KEY)


if __name__ == "__main__":
    main()
