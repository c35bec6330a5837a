"""What unauthenticated endpoints and anonymous clients can learn or cost: nothing a tenant owns.

``/metrics`` needs a key in API-key mode and shows a tenant only its own series; labels a
client chooses (model names) are capped; ``/readyz`` names the failing part, never a DSN or
a tenant; in trusted mode new tenants (each a database or schema) are rationed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.diagnosis.test_tenant_databases import per_tenant_url
from tests.receiver.harness import Running
from tests.receiver.otlp import Span, agent_trace, to_protobuf

__all__ = ["per_tenant_url"]
KEYS = "alpha:key-alpha-0001,beta:key-beta-0002"
PB = {"content-type": "application/x-protobuf"}


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _priced_llm_trace(run_id: str, model: str, cost: float | None = None) -> list[Span]:
    spans = agent_trace(run_id)
    spans[2].attributes["gen_ai.request.model"] = model
    if cost is not None:
        spans[2].attributes["gen_ai.usage.cost"] = cost
    return spans


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # database-independent
def test_metrics_need_a_key_in_key_mode_and_a_tenant_key_shows_only_that_tenant(
    serve: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_DIAG_METRICS_TOKEN", "scrape-token-42")
    srv = serve(api_keys=KEYS)
    for key, run in (("key-alpha-0001", "alpha-run"), ("key-beta-0002", "beta-run")):
        body = to_protobuf(_priced_llm_trace(run, "gpt-4o-mini")).SerializeToString()
        assert srv.http.post("/v1/traces", content=body, headers={**PB, **_bearer(key)}).is_success
    assert srv.http.get("/metrics").status_code == 401
    assert srv.http.get("/metrics", headers=_bearer("wrong")).status_code == 401
    everything = srv.http.get("/metrics", headers=_bearer("scrape-token-42")).text
    assert 'tenant="alpha"' in everything and 'tenant="beta"' in everything
    alpha = srv.http.get("/metrics", headers=_bearer("key-alpha-0001"))
    assert alpha.status_code == 200
    assert 'tenant="alpha"' in alpha.text and "beta" not in alpha.text
    assert 'otel_diag_ingest_requests_total{result="ok",transport="http"} 2.0' in alpha.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_client_chosen_model_names_fold_into_other_beyond_priced_and_capped_ones(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    spans = []
    for i in range(150):  # the attack: thousands of model names, each a new series
        spans += _priced_llm_trace(f"run-{i}", f"made-up-model-{i}", cost=0.01)
    spans += _priced_llm_trace("real", "gpt-4o-mini")
    srv.raw_export(to_protobuf(spans).SerializeToString())
    text = srv.http.get("/metrics").text
    models = set(re.findall(r'otel_diag_observed_cost_usd_total\{model="([^"]*)"', text))
    models |= set(re.findall(r'otel_diag_observed_cost_usd_total\{[^}]*model="([^"]*)"', text))
    assert models == {"gpt-4o-mini", "other"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the server uses per_tenant_url
def test_readyz_says_which_part_is_down_but_never_a_dsn_or_tenant(
    serve: Callable[..., Running], per_tenant_url: tuple[str, Callable[[str], None]]
) -> None:
    url, drop = per_tenant_url
    srv = serve(database_url=url, api_keys=KEYS)
    assert srv.http.get("/readyz").status_code == 200
    drop("beta")
    ready = srv.http.get("/readyz")
    assert ready.status_code == 503
    database = url.rsplit("/", 1)[1].replace("{tenant}", "")
    for secret in (database, "beta", "alpha", "127.0.0.1", "5432", "otel_diag_test"):
        assert secret not in ready.text
    assert "unavailable" in ready.json()["databases"]["database 2"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_trusted_mode_creates_a_bounded_number_of_new_tenants_per_minute(
    serve: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_DIAG_NEW_TENANTS_PER_MINUTE", "3")
    srv = serve()
    srv.raw_export(to_protobuf(agent_trace("the-default-tenant")).SerializeToString())
    answers = []
    for i in range(5):
        body = to_protobuf(agent_trace(f"t{i}"), {"tenant.id": f"made-up-{i}"}).SerializeToString()
        answers.append(srv.http.post("/v1/traces", content=body, headers=PB))
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    new = to_protobuf(agent_trace("t9"), {"tenant.id": "made-up-9"}).SerializeToString()
    with pytest.raises(grpc.RpcError) as info:
        srv.raw_export(new)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    srv.raw_export(to_protobuf(agent_trace("still-fine")).SerializeToString())
    assert srv.counts()["runs"] == 2
    assert not any(os.sep in t for t in srv.server.storage.tenants())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ingest_processes_share_one_new_tenant_budget(
    serve: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests sent together land on both worker processes: together they create 3 new
    tenants, not 3 each."""
    monkeypatch.setenv("OTEL_DIAG_NEW_TENANTS_PER_MINUTE", "3")
    monkeypatch.setenv("OTEL_DIAG_INGEST_PROCESSES", "2")
    srv = serve()
    bodies = [
        to_protobuf(agent_trace(f"p{i}"), {"tenant.id": f"spread-{i}"}).SerializeToString()
        for i in range(16)
    ]
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda b: srv.http.post("/v1/traces", content=b, headers=PB), bodies)
        )
    accepted = [i for i, a in enumerate(answers) if a.status_code == 200]

    assert len(accepted) == 3, [a.status_code for a in answers]
    assert {a.status_code for a in answers} == {200, 429}
    again = to_protobuf(agent_trace("again"), {"tenant.id": f"spread-{accepted[0]}"})
    reply = srv.http.post("/v1/traces", content=again.SerializeToString(), headers=PB)
    assert reply.status_code == 200  # a tenant that exists costs nothing
