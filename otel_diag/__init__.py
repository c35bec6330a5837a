"""otel-diag: OpenTelemetry-native failure diagnosis for LLM and agent applications.

The public surface is small: the instrumentation (``@agent``, ``@tool``, ``run()``,
``step()``, ``configure()``), the exporter, the collector, the tenant-engine helpers, and
settings. Everything else lives in underscore-free but internal modules whose layout
follows the pipeline: spans -> projection -> store -> diagnosis -> api/cli.
"""

from otel_diag.collector import ErrorCollector
from otel_diag.config import Settings, load_settings
from otel_diag.export.exporter import ErrorLogSpanExporter
from otel_diag.instrumentation import LogSource, agent, run, step, tool
from otel_diag.instrumentation.configure import configure
from otel_diag.store.engine import (
    InvalidTenantError,
    TenantDBManager,
    get_tenant_engine,
    get_tenant_manager,
)
from otel_diag.version import __version__

__all__ = [
    "ErrorCollector",
    "ErrorLogSpanExporter",
    "InvalidTenantError",
    "LogSource",
    "Settings",
    "TenantDBManager",
    "__version__",
    "agent",
    "configure",
    "get_tenant_engine",
    "get_tenant_manager",
    "load_settings",
    "run",
    "step",
    "tool",
]
