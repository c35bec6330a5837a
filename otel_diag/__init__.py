"""otel-diag: OpenTelemetry-native failure diagnosis for LLM and agent applications.

The public surface is what an application calls: the instrumentation (``@agent``, ``@tool``,
``run()``, ``step()``), ``configure()``, the ``ErrorCollector`` error API, the
``ErrorLogSpanExporter`` and the ``DiagnosticsService``. Everything else (settings, the
store's tenant engines, the server) lives in modules named for what they do, whose layout
follows the pipeline: instrumentation -> spans -> projection -> store -> diagnosis ->
api/cli, with ``server`` wiring it together.

Names are resolved lazily (PEP 562): ``import otel_diag`` costs almost nothing, and an app
that only uses the decorators, ``configure()`` or the error emit API never loads SQLAlchemy
or litellm.
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
    from otel_diag.diagnosis.service import DiagnosticsService
    from otel_diag.error_collector import ErrorCollector
    from otel_diag.instrumentation import agent, run, step, tool
    from otel_diag.sdk.configure import configure
    from otel_diag.sdk.exporter import ErrorLogSpanExporter

_EXPORTS = {
    "DiagnosticsService": "otel_diag.diagnosis.service",
    "ErrorCollector": "otel_diag.error_collector",
    "ErrorLogSpanExporter": "otel_diag.sdk.exporter",
    "agent": "otel_diag.instrumentation",
    "configure": "otel_diag.sdk.configure",
    "run": "otel_diag.instrumentation",
    "step": "otel_diag.instrumentation",
    "tool": "otel_diag.instrumentation",
}

__all__ = [
    "DiagnosticsService",
    "ErrorCollector",
    "ErrorLogSpanExporter",
    "__version__",
    "agent",
    "configure",
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
