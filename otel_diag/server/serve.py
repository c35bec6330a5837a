"""``otel-diag serve`` wiring: OTLP/gRPC, the HTTP app (OTLP/HTTP + API) and background services.

Everything network-facing runs in one asyncio loop: the grpc.aio server on the gRPC port and
uvicorn on the HTTP port. Background services (the diagnosis worker, the alert evaluator)
are threads of their own with ``start()`` / ``stop(timeout)``. :meth:`OtelDiagServer.stop`
shuts down in the order that loses nothing: stop accepting, let in-flight requests finish
(their spans are written before they are answered), stop the services, close the storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import socket
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import grpc
import uvicorn

from otel_diag.api.context import AppContext
from otel_diag.config import Settings
from otel_diag.metrics import FAILURE_WINDOW_HOURS, ServerMetrics
from otel_diag.receiver.grpc_server import build_grpc_server
from otel_diag.receiver.ingest import Ingestor
from otel_diag.receiver.memory import tune_allocator
from otel_diag.report_rows import Gauges
from otel_diag.rows import FailureCost
from otel_diag.server.app import create_app
from otel_diag.server.connections import (
    ACCEPT_BATCH,
    connection_cap,
    guarded_http_protocol,
    quiet_accept_errors,
    raise_open_file_limit,
)
from otel_diag.store import open_storage
from otel_diag.store.port import Storage
from otel_diag.store.sink import SpanSink
from otel_diag.store.tenant_budget import BudgetWindow
from otel_diag.tenancy import Tenancy, is_loopback

logger = logging.getLogger(__name__)


class BindRefused(ValueError):
    """A non-loopback bind in trusted mode (no API keys) without ``--insecure``."""


class BackgroundService(Protocol):
    def start(self) -> Any: ...
    def stop(self, timeout: float = ...) -> Any: ...


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on connections accepted from a
    # socket whose proto says TCP. With proto 0, Nagle held back the second write of every
    # response on a kept-alive connection until the client's delayed ACK: +40 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind HTTP to {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(ACCEPT_BATCH)
    sock.setblocking(False)
    return sock


class OtelDiagServer:
    """One ``serve`` instance. Ports 0 pick free ports (see :attr:`grpc_port`, :attr:`http_port`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        host: str = "127.0.0.1",
        grpc_port: int = 4317,
        http_port: int = 4318,
        insecure: bool = False,
        storage: Storage | None = None,
        services: list[BackgroundService] | None = None,
    ) -> None:
        self.settings = settings
        self.tenancy = Tenancy.from_settings(settings.api_keys)
        if self.tenancy.trusted and not is_loopback(host) and not insecure:
            raise BindRefused(
                f"refusing to bind {host} without API keys: set OTEL_DIAG_API_KEYS, bind a "
                "loopback address, or pass --insecure"
            )
        self.host = host
        self.grpc_port = grpc_port
        self.http_port = http_port
        self._owns_storage = storage is None
        self.storage = storage or open_storage(settings)
        new_tenants = None
        if self.tenancy.trusted:  # any client names its tenant: creating them is rationed
            per_minute = settings.new_tenants_per_minute
            if per_minute > 0 and settings.ingest_processes > 0:  # one budget for all
                new_tenants = BudgetWindow.shared(per_minute, multiprocessing.get_context("spawn"))
            self.storage.limit_new_tenants(per_minute, new_tenants)
        self.metrics = ServerMetrics()
        # Shares matter only between tenants: a single tenant (or trusted mode) has the whole.
        share = settings.tenant_share if len(self.tenancy.tenants) > 1 else None
        self.ingestor = Ingestor(
            SpanSink(self.storage, settings),
            settings,
            self.metrics,
            tenant_share=share,
            new_tenants=new_tenants,
        )
        self.context = AppContext(
            settings=settings,
            storage=self.storage,
            tenancy=self.tenancy,
            metrics=self.metrics,
        )
        self.metrics.watch_databases(self._known_tenants, self._read_gauges)
        self.metrics.watch_failure_cost(self._known_tenants, self._read_failure_cost)
        self.app = create_app(self.context, self.ingestor)
        self.services: list[BackgroundService] = list(services or [])
        self._grpc: grpc.aio.Server | None = None
        self._http: _EmbeddedUvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None

    def _known_tenants(self) -> list[str]:
        return sorted({*self.tenancy.tenants, *self.storage.tenants()} or {self.settings.tenant})

    def _read_gauges(self, tenant: str) -> Gauges:
        return self.storage.tenant(tenant).gauges()

    def _read_failure_cost(self, tenant: str) -> FailureCost:
        since = datetime.now(UTC) - timedelta(hours=FAILURE_WINDOW_HOURS)
        return self.storage.tenant(tenant).failure_cost(since, None)

    async def start(self) -> None:
        """Open the default database, bind both ports, start the services."""
        tune_allocator()  # before the flood, not after: see otel_diag.receiver.memory
        tenants = self.tenancy.tenants or [self.settings.tenant]
        for tenant in tenants:  # fail at start, not on the first request
            await asyncio.to_thread(self.storage.tenant, tenant)
        cap = connection_cap(self.settings.max_connections, raise_open_file_limit())
        idle = self.settings.idle_timeout
        quiet_accept_errors(asyncio.get_running_loop())
        self._grpc, self.grpc_port = build_grpc_server(
            self.ingestor,
            self.tenancy,
            self.host,
            self.grpc_port,
            max_connections=cap,
            idle_timeout=idle,
        )
        sock = _listen(self.host, self.http_port)
        self.http_port = sock.getsockname()[1]
        await self._grpc.start()
        config = uvicorn.Config(
            self.app,
            http=guarded_http_protocol(cap, idle),
            backlog=ACCEPT_BATCH,  # also the accepts per loop turn: a bounded burst of fds
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._http = _EmbeddedUvicorn(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        for service in self.services:
            await asyncio.to_thread(service.start)
        logger.info(
            "otel-diag serving OTLP/gRPC on %s:%d, OTLP/HTTP + API on %s:%d (%s)",
            self.host,
            self.grpc_port,
            self.host,
            self.http_port,
            "trusted mode" if self.tenancy.trusted else f"{len(self.tenancy.keys)} API key(s)",
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, stop services, close the databases."""
        if self._http is not None:
            self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace=timeout / 2)
        if self._http_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._http_task, timeout / 2)
        for service in reversed(self.services):
            try:
                await asyncio.to_thread(service.stop, timeout / 2)
            except Exception:
                logger.exception("otel-diag: stopping %s failed", type(service).__name__)
        await asyncio.to_thread(self.ingestor.close, True)
        if self._owns_storage:
            self.storage.dispose()
        self._grpc = self._http = self._http_task = None
