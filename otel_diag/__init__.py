"""otel-diag: OpenTelemetry-native failure diagnosis for LLM and agent applications.

The public surface is small: the instrumentation (``@agent``, ``@tool``, ``run()``,
``step()``, ``configure()``), the exporter, the collector, the tenant-engine helpers, and
settings. Everything else lives in modules whose layout follows the pipeline:
spans -> projection -> store -> diagnosis -> api/cli.

Names are resolved lazily (PEP 562): ``import otel_diag`` costs almost nothing, and a CLI
command or an app that only uses the decorators never loads SQLAlchemy or Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otel_diag.version import __version__

if TYPE_CHECKING:
    from otel_diag.collector import ErrorCollector
    from otel_diag.config import Settings, load_settings
    from otel_diag.export.exporter import ErrorLogSpanExporter
    from otel_diag.instrumentation import LogSource, agent, run, step, tool
    from otel_diag.instrumentation.configure import configure
    from otel_diag.store.engine import TenantDBManager, get_tenant_engine, get_tenant_manager
    from otel_diag.tenants import InvalidTenantError

_EXPORTS = {
    "ErrorCollector": "otel_diag.collector",
    "ErrorLogSpanExporter": "otel_diag.export.exporter",
    "InvalidTenantError": "otel_diag.tenants",
    "LogSource": "otel_diag.instrumentation",
    "Settings": "otel_diag.config",
    "TenantDBManager": "otel_diag.store.engine",
    "agent": "otel_diag.instrumentation",
    "configure": "otel_diag.instrumentation.configure",
    "get_tenant_engine": "otel_diag.store.engine",
    "get_tenant_manager": "otel_diag.store.engine",
    "load_settings": "otel_diag.config",
    "run": "otel_diag.instrumentation",
    "step": "otel_diag.instrumentation",
    "tool": "otel_diag.instrumentation",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_diag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
