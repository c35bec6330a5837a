"""API keys with a database per tenant (``..._{tenant}`` URL): every worker serves every tenant.

Workers (``serve``'s and ``diagnose --worker``) find tenants in the configuration (the key
tenants) and on the database server (the databases the URL pattern names), never assume a
``default`` tenant that keys mode does not have, and skip a tenant whose database is gone
with one warning per interval, not a traceback every second.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator

import grpc
import psycopg
import pytest
from click.testing import CliRunner

from otel_diag.cli import main
from tests.receiver.harness import Running, serve
from tests.receiver.otlp import agent_trace, to_protobuf

__all__ = ["serve"]
KEYS = "alpha:key-alpha-0001,beta:key-beta-0002"


@pytest.fixture
def per_tenant_url(pg_admin: str) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A ``{tenant}`` URL, the databases of alpha and beta, and a way to drop one."""
    prefix = f"otel_diag_t_{uuid.uuid4().hex[:8]}"

    def drop(tenant: str) -> None:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{prefix}_{tenant}" WITH (FORCE)')

    with psycopg.connect(pg_admin, autocommit=True) as conn:
        for tenant in ("alpha", "beta"):
            conn.execute(f'CREATE DATABASE "{prefix}_{tenant}"')
    base = pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{prefix}_{{tenant}}", drop
    for tenant in ("alpha", "beta"):
        drop(tenant)


def _send(srv: Running, key: str, run_id: str) -> None:
    body = to_protobuf(agent_trace(run_id)).SerializeToString()
    srv.raw_export(body, metadata=(("authorization", f"Bearer {key}"),))


def _diagnosed(srv: Running, key: str, run_id: str) -> bool:
    headers = {"authorization": f"Bearer {key}"}
    return (
        srv.http.get(f"/api/runs/{run_id}/diagnostics/latest", headers=headers).status_code == 200
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the server uses per_tenant_url
def test_diagnose_worker_once_serves_every_key_tenant_database(
    serve: Callable[..., Running], per_tenant_url: tuple[str, Callable[[str], None]]
) -> None:
    url, _drop = per_tenant_url
    srv = serve(database_url=url, api_keys=KEYS, diagnosis="rules", decision_wait=0)
    _send(srv, "key-alpha-0001", "alpha-run")
    _send(srv, "key-beta-0002", "beta-run")
    env = {"OTEL_DIAG_API_KEYS": KEYS, "OTEL_DIAG_DIAGNOSIS": "rules"}
    env["OTEL_DIAG_DECISION_WAIT"] = "0"
    result = CliRunner().invoke(
        main, ["diagnose", "--worker", "--once", "--database-url", url], env=env
    )
    assert result.exit_code == 0, result.output
    assert "diagnosed 2 run(s)" in result.output
    assert _diagnosed(srv, "key-alpha-0001", "alpha-run")
    assert _diagnosed(srv, "key-beta-0002", "beta-run")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_skips_a_vanished_tenant_database_with_a_warning_not_a_traceback(
    serve: Callable[..., Running],
    per_tenant_url: tuple[str, Callable[[str], None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, drop = per_tenant_url
    srv = serve(
        background=True, database_url=url, api_keys=KEYS, diagnosis="rules", decision_wait=0
    )
    drop("beta")
    caplog.set_level(logging.WARNING)
    caplog.clear()
    started = time.monotonic()
    for i in range(3):  # several worker rounds, each with beta's database gone
        _send(srv, "key-alpha-0001", f"alpha-{i}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _diagnosed(srv, "key-alpha-0001", f"alpha-{i}"):
            time.sleep(0.2)
        assert _diagnosed(srv, "key-alpha-0001", f"alpha-{i}")
    with pytest.raises(grpc.RpcError) as info:
        _send(srv, "key-beta-0002", "beta-lost")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    worker_records = [r for r in caplog.records if r.name.startswith("otel_diag.diagnosis")]
    assert [r for r in worker_records if r.exc_info] == []
    assert all("default" not in r.getMessage() for r in worker_records)
    beta = [r for r in worker_records if "beta" in r.getMessage()]
    assert 1 <= len(beta) <= 1 + int((time.monotonic() - started) / 60)
