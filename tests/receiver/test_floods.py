"""Floods of large requests against a real ``serve`` process: memory stays bounded, and returns.

Moderate floods with small limits (the full-size figures are ``python -m tests.bench
floods``); the bound asserted is the documented one (``OTEL_DIAG_MAX_INFLIGHT_BYTES``):
about 150 MiB + 2 x the in-flight bytes + 2 x the request limit per ingest worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.bench.bench_floods import flood_body, grpc_flood, http_flood
from tests.receiver.process import ServeProcess

MIB = 1024 * 1024
KEY = "flood-key-0123456789"
LIMITS = {
    "OTEL_DIAG_API_KEYS": f"alpha:{KEY}",
    "OTEL_DIAG_MAX_REQUEST_BYTES": str(16 * MIB),
    "OTEL_DIAG_MAX_INFLIGHT_BYTES": str(32 * MIB),
    "OTEL_DIAG_INGEST_WORKERS": "2",
}
BOUND_MIB = 150 + 2 * 32 + 2 * 16 * 2
CALLS = 24
BODY_MIB = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    path = tmp_path_factory.mktemp("floods") / "flood.db"
    srv = ServeProcess(f"sqlite:///{path}", env=LIMITS).start()
    yield srv
    srv.stop()


@pytest.fixture
def flooded_server(server: ServeProcess) -> ServeProcess:
    """The module's server, its peak RSS measured from now."""
    server.reset_peak()
    return server


def _settled_rss(srv: ServeProcess, target_mib: float, deadline_s: float = 30) -> float:
    """RSS once it fell to ``target_mib`` (or where it stayed by the deadline)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and srv.rss_mib() > target_mib:
        time.sleep(0.2)
    return srv.rss_mib()


def test_an_anonymous_grpc_flood_is_refused_before_its_bodies_are_read(
    flooded_server: ServeProcess,
) -> None:
    """Key mode: refusing a call without a key must not cost its 12 MiB body first."""
    srv = flooded_server
    base = srv.rss_mib()
    outcomes = asyncio.run(grpc_flood(srv.grpc_target, flood_body(BODY_MIB), None, CALLS))
    assert outcomes == {"UNAUTHENTICATED": CALLS}
    assert srv.peak_rss_mib() - base < 48, f"peak {srv.peak_rss_mib():.0f} MiB from {base:.0f}"


@pytest.mark.parametrize("flood", [grpc_flood, http_flood], ids=["grpc", "http"])
def test_an_authenticated_flood_stays_within_the_documented_bound_and_memory_returns(
    flooded_server: ServeProcess, flood: object
) -> None:
    srv = flooded_server
    base = srv.rss_mib()
    target = srv.grpc_target if flood is grpc_flood else srv.http_url
    body = flood_body(BODY_MIB)
    outcomes = asyncio.run(flood(target, body, KEY, CALLS))  # type: ignore[operator]
    stored = outcomes.get("OK", 0) + outcomes.get("200", 0)
    assert stored >= 1 and sum(outcomes.values()) == CALLS, outcomes
    assert set(outcomes) <= {"OK", "UNAVAILABLE", "200", "503"}, outcomes
    assert srv.peak_rss_mib() < BOUND_MIB, f"peak {srv.peak_rss_mib():.0f} MiB (bound {BOUND_MIB})"
    assert _settled_rss(srv, base + 40) <= base + 40
