"""Tenancy: API keys decide the tenant of ingest and API alike; trusted mode reads it from the data."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
import pytest

from otel_diag.config import load_settings
from otel_diag.server.serve import BindRefused, OtelDiagServer
from otel_diag.tenancy import TenancyConfigError, parse_api_keys
from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_json, to_protobuf

KEYS = "acme:key-acme-123,globex:key-globex-456"
PB = {"content-type": "application/x-protobuf"}


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_ingest_without_or_with_a_wrong_key_is_unauthenticated(
    serve: Callable[..., Running],
) -> None:
    srv = serve(api_keys=KEYS)
    body = to_protobuf(agent_trace("no-key")).SerializeToString()
    for metadata in ((), (("authorization", "Bearer nope"),), (("authorization", "key-acme-123"),)):
        with pytest.raises(grpc.RpcError) as info:
            srv.raw_export(body, metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert srv.http.post("/v1/traces", content=body, headers=PB).status_code == 401
    wrong = {**PB, **_bearer("key-globex-999")}
    assert srv.http.post("/v1/traces", content=body, headers=wrong).status_code == 401
    assert srv.counts("acme") == {"runs": 0, "steps": 0, "errors": 0}


def test_a_span_claiming_another_tenant_is_stored_under_the_keys_tenant(
    serve: Callable[..., Running],
) -> None:
    srv = serve(api_keys=KEYS)
    spans = agent_trace("claims-globex")
    spans[0].attributes["otel_diag.tenant.id"] = "globex"
    body = to_protobuf(spans, {"service.name": "sneaky", "tenant.id": "globex"}).SerializeToString()
    srv.raw_export(body, metadata=(("authorization", "Bearer key-acme-123"),))
    assert srv.counts("acme") == {"runs": 1, "steps": 3, "errors": 2}
    assert srv.counts("globex") == {"runs": 0, "steps": 0, "errors": 0}
    metrics = srv.http.get("/metrics", headers=_bearer("key-acme-123")).text
    assert 'otel_diag_spans_tenant_overridden_total{tenant="acme"} 4.0' in metrics


def test_a_key_never_sees_another_tenants_runs(serve: Callable[..., Running]) -> None:
    srv = serve(api_keys=KEYS)
    acme_trace = agent_trace("acme-run")
    body = json.dumps(to_json(acme_trace))
    headers = {"content-type": "application/json", **_bearer("key-acme-123")}
    assert srv.http.post("/v1/traces", content=body, headers=headers).status_code == 200
    acme_runs = srv.http.get("/api/runs", headers=_bearer("key-acme-123")).json()["runs"]
    run_id = acme_runs[0]["id"]
    globex = _bearer("key-globex-456")
    assert srv.http.get("/api/runs", headers=globex).json()["runs"] == []
    for path in ("errors", "errors/summary", "diagnostics", "diagnostics/latest"):
        assert srv.http.get(f"/api/runs/{run_id}/{path}", headers=globex).status_code == 404
    trace_ref = acme_trace[0].trace_id.hex()
    assert srv.http.get(f"/api/runs/{trace_ref}/errors", headers=globex).status_code == 404
    # X-Tenant cannot widen a key's reach
    spoof = {**globex, "x-tenant": "acme"}
    assert srv.http.get(f"/api/runs/{run_id}/errors", headers=spoof).status_code == 404
    assert (
        srv.http.get(f"/api/runs/{run_id}/errors", headers=_bearer("key-acme-123")).status_code
        == 200
    )


def test_api_without_or_with_a_wrong_key_is_401(serve: Callable[..., Running]) -> None:
    srv = serve(api_keys=KEYS)
    for headers in ({}, _bearer("wrong"), {"authorization": "Basic a2V5LWFjbWUtMTIz"}):
        reply = srv.http.get("/api/runs", headers=headers)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == "Bearer"


def test_trusted_mode_routes_ingest_by_resource_tenant_and_api_by_x_tenant(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    srv.raw_export(to_protobuf(agent_trace("t1"), {"tenant.id": "team-a"}).SerializeToString())
    srv.raw_export(
        to_protobuf(agent_trace("t2"), {"otel_diag.tenant.id": "team-b"}).SerializeToString()
    )
    srv.raw_export(to_protobuf(agent_trace("t3")).SerializeToString())
    for tenant in ("team-a", "team-b", "default"):
        runs = srv.http.get("/api/runs", headers={"x-tenant": tenant}).json()["runs"]
        assert len(runs) == 1, tenant
    assert len(srv.http.get("/api/runs").json()["runs"]) == 1  # default
    assert srv.http.get("/api/runs", headers={"x-tenant": "../etc"}).status_code == 400
    # A header naming a tenant that has no data is a 404; it creates no database.
    assert srv.http.get("/api/runs", headers={"x-tenant": "nobody"}).status_code == 404
    assert "nobody" not in srv.server.storage.discover_tenants()


def test_readiness_does_not_list_tenants_to_unauthenticated_callers_in_keys_mode(
    serve: Callable[..., Running],
) -> None:
    srv = serve(api_keys=KEYS)
    databases = srv.http.get("/readyz").json()["databases"]
    assert set(databases.values()) == {"ok"}
    assert not {"acme", "globex"} & set(databases)


def test_spans_naming_an_invalid_tenant_are_rejected_in_partial_success(
    serve: Callable[..., Running],
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    srv = serve()
    body = to_protobuf(
        agent_trace("bad-tenant"), {"tenant.id": "Bad Tenant;DROP"}
    ).SerializeToString()
    reply = ExportTraceServiceResponse.FromString(srv.raw_export(body))
    assert reply.partial_success.rejected_spans == 4
    assert "invalid tenant id" in reply.partial_success.error_message


def test_non_loopback_bind_needs_keys_or_insecure() -> None:
    trusted = load_settings()
    with pytest.raises(BindRefused):
        OtelDiagServer(trusted, host="0.0.0.0")
    OtelDiagServer(trusted, host="0.0.0.0", insecure=True).ingestor.close()
    OtelDiagServer(load_settings(api_keys=KEYS), host="0.0.0.0").ingestor.close()
    OtelDiagServer(trusted, host="::1").ingestor.close()


@pytest.mark.parametrize("raw", ["acme", "acme:", ":key", "Bad!:key", "a:k,b:k"])
def test_malformed_api_keys_are_a_configuration_error(raw: str) -> None:
    with pytest.raises(TenancyConfigError):
        parse_api_keys(raw)
