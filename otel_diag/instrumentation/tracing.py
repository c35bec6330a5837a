"""Which tracer otel-diag's instrumentation writes to, and how it fails: never into user code.

Every span otel-diag makes (decorators, ``run()``/``step()``, litellm calls) comes from the one
tracer held here. By default that is the global tracer (a proxy until a provider is set, as
the OpenTelemetry API does it); :func:`set_tracer_provider` points it at another provider,
which is what ``configure(set_global=False)`` and tests use.

Instrumentation code runs inside the user's call. Its own bugs must not change what that call
does, so internal errors go through :func:`internal_error`: logged once per place, swallowed.
Under test (``RAISE_INTERNAL_ERRORS``) they are raised instead, so a bug cannot hide behind
the safety net (Logfire does the same under pytest).
"""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry import trace
from opentelemetry.trace import Tracer, TracerProvider

from otel_diag.config import CAPTURE_CONTENT_ENV
from otel_diag.version import __version__

logger = logging.getLogger("otel_diag.instrumentation")

INSTRUMENTATION_NAME = "otel_diag"

RAISE_INTERNAL_ERRORS = False
"""Tests set this so instrumentation bugs fail loudly instead of being swallowed."""


class _Holder:
    """The current tracer; one attribute load on the hot path."""

    __slots__ = ("tracer",)

    def __init__(self) -> None:
        self.tracer: Tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__)


_holder = _Holder()
_warned: set[str] = set()
_warned_lock = threading.Lock()
_capture_override: bool | None = None


def get_tracer() -> Tracer:
    """The tracer otel-diag's own spans are made with."""
    return _holder.tracer


def set_tracer_provider(provider: TracerProvider | None) -> None:
    """Send otel-diag's spans to ``provider``; None goes back to the global provider."""
    if provider is None:
        _holder.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__)
    else:
        _holder.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)


def set_capture_content(enabled: bool | None) -> None:
    """Force content capture on or off; None follows the environment variable again."""
    global _capture_override
    _capture_override = enabled


def capture_content() -> bool:
    """Whether arguments, results and messages may be recorded (see ``CAPTURE_CONTENT_ENV``).

    Read on every call (one environment lookup), so toggling the variable takes effect
    without re-decorating anything.
    """
    if _capture_override is not None:
        return _capture_override
    raw = os.environ.get(CAPTURE_CONTENT_ENV)
    return raw is not None and raw.strip().lower() in ("1", "true", "yes")


def internal_error(where: str) -> None:
    """Call from an ``except`` block around instrumentation code: log once, or raise in tests."""
    if RAISE_INTERNAL_ERRORS:
        raise
    with _warned_lock:
        first = where not in _warned
        _warned.add(where)
    if first:
        logger.warning(
            "otel-diag instrumentation failed in %s; the call went on, its telemetry is "
            "incomplete (further failures here are logged at debug level)",
            where,
            exc_info=True,
        )
    else:
        logger.debug("otel-diag instrumentation failed in %s", where, exc_info=True)
