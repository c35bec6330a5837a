"""One tenant cannot starve the others: slow uploads hold only that tenant's share, briefly."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import grpc
import pytest

from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_protobuf
from tests.receiver.slow_clients import SlowUploads

KEYS = "alpha:key-alpha-0001,beta:key-beta-0002"
BETA = "key-beta-0002"


def beta_export(srv: Running, i: int) -> bool:
    """One ordinary export by beta, over gRPC or HTTP in turn; True if it was stored."""
    body = to_protobuf(agent_trace(f"beta-{i}")).SerializeToString()
    if i % 2:
        try:
            srv.raw_export(body, metadata=(("authorization", f"Bearer {BETA}"),))
        except grpc.RpcError:
            return False
        return True
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {BETA}"}
    return srv.http.post("/v1/traces", content=body, headers=headers).status_code == 200


def _metrics(srv: Running) -> str:
    return srv.http.get("/metrics", headers={"authorization": f"Bearer {BETA}"}).text


def _held(srv: Running) -> float:
    """Requests the server holds now (a server-wide gauge: any tenant's key reads it)."""
    text = _metrics(srv)
    match = re.search(r"^otel_diag_ingest_queue_depth (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # database-independent
def test_slow_uploads_of_one_tenant_leave_other_tenants_ingesting(
    serve: Callable[..., Running],
) -> None:
    srv = serve(api_keys=KEYS)
    attack = SlowUploads("127.0.0.1", srv.server.http_port, srv.server.grpc_port, "key-alpha-0001")
    attack.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _held(srv) < 4:  # the attack holds slots now
            time.sleep(0.05)
        assert _held(srv) >= 4
        results = [beta_export(srv, i) for i in range(30)]
        held_by_alpha = _held(srv)
        while time.monotonic() < deadline + 30 and len(attack.http_answers) < attack.count:
            time.sleep(0.1)  # each slow upload is cut: it gets its answer
    finally:
        attack.stop()
    assert sum(results) / len(results) >= 0.8, results
    assert held_by_alpha <= srv.server.ingestor.max_inflight // 2
    assert attack.http_answers == ["HTTP/1.1 503 Service Unavailable"] * attack.count
    assert 'otel_diag_ingest_requests_total{result="slow_upload",transport="http"}' in _metrics(srv)
