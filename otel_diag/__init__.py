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
import os
from typing import TYPE_CHECKING, Any

from otel_diag.version import __version__

LITELLM_LOCAL_MODEL_COST_MAP = "LITELLM_LOCAL_MODEL_COST_MAP"


def _use_litellms_bundled_prices() -> None:
    """Make litellm read its bundled price map instead of downloading it, unless told otherwise.

    litellm fetches its price map over the network when it is imported (with retries and
    ``Failed to fetch remote model cost map`` warnings where there is no network: seconds of
    delay), unless ``LITELLM_LOCAL_MODEL_COST_MAP`` is true. That import happens in the
    user's process whenever their app uses litellm (our instrumentor patches it) and in ours
    when a diagnosis calls an LLM. This package's ``__init__`` runs before any otel-diag
    module, so setting the default here covers every process that loads otel-diag: the
    exporter and instrumentor entry points and the distro under ``opentelemetry-instrument``
    (all loaded before the app's own code), ``otel_diag.configure()``, ``serve``, the CLI
    and the diagnosis worker. A value the user set, whatever it is, wins. Child processes
    inherit the default, which is what an app that forks workers wants too.
    """
    os.environ.setdefault(LITELLM_LOCAL_MODEL_COST_MAP, "True")


_use_litellms_bundled_prices()

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
