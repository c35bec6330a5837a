"""A real ``serve`` on loopback free ports, per test, over the test's database (``db_url``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest

from otel_diag.config import load_settings
from otel_diag.server.runner import ServerThread
from otel_diag.server.serve import OtelDiagServer
from otel_diag.server.services import background_services
from otel_diag.store import open_storage
from otel_diag.store.port import ExportFilter, ExportTable, Storage

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TABLES: tuple[ExportTable, ...] = ("runs", "steps", "errors")


@dataclass
class Running:
    server: OtelDiagServer
    thread: ServerThread
    http: httpx.Client

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    def raw_export(
        self, body: bytes, metadata: tuple[tuple[str, str], ...] = (), timeout: float = 10
    ) -> bytes:
        """Call Export with raw bytes (no client-side serialization)."""
        with grpc.insecure_channel(
            self.grpc_target, options=[("grpc.max_send_message_length", 256 * 1024 * 1024)]
        ) as channel:
            call = channel.unary_unary(EXPORT)
            return call(body, metadata=metadata, timeout=timeout)  # type: ignore[no-any-return]

    def counts(self, tenant: str = "default") -> dict[str, int]:
        """Rows stored for ``tenant``: runs, steps and errors (every row, unfiltered)."""
        store = self.server.storage.tenant(tenant)
        return {table: store.export_count(table, ExportFilter()) for table in TABLES}

    def healthy(self) -> bool:
        return self.http.get("/healthz").status_code == 200 and (
            self.http.get("/readyz").status_code == 200
        )


@pytest.fixture
def serve(db_url: str) -> Iterator[Callable[..., Running]]:
    """Factory: ``serve(**settings)`` starts a server on ``db_url`` with those settings."""
    started: list[Running] = []
    opened: list[Storage] = []

    def start(*, background: bool = False, **overrides: Any) -> Running:
        overrides.setdefault("database_url", db_url)
        settings = load_settings(**overrides)
        services = []
        storage = None
        if background:  # the diagnosis worker and alert evaluator, as `otel-diag serve` runs
            storage = open_storage(settings)
            opened.append(storage)
            services = background_services(storage, settings)
        server = OtelDiagServer(
            settings, grpc_port=0, http_port=0, storage=storage, services=services
        )
        thread = ServerThread(server)
        thread.start()
        running = Running(
            server,
            thread,
            httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30),
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.http.close()
        running.thread.stop()
    for storage in opened:
        storage.dispose()
