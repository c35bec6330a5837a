"""``LiteLLMInstrumentor``: spans for ``litellm.completion`` / ``acompletion`` / ``embedding``.

Registered as the ``opentelemetry_instrumentor`` entry point ``otel_diag_litellm``, so
``opentelemetry-instrument`` applies it; or call ``LiteLLMInstrumentor().instrument()``.

Patching replaces attributes of the ``litellm`` module (``completion``, ``acompletion``,
``embedding``, ``aembedding``, and the ``*_with_retries`` functions litellm's retry handling
calls) and the OpenAI SDK's retry back-off (see :mod:`.litellm_retries`), keeping the
originals so ``uninstrument()`` puts back the exact same objects. Importing litellm takes
seconds, so ``instrument()`` never imports it: if litellm is not imported yet, the patch is
applied by a post-import hook the moment it is. A name bound with
``from litellm import completion`` *before* the patch keeps the unpatched function;
instrument first (``opentelemetry-instrument`` and ``otel_diag.configure()`` do).

Calls made while instrumentation is suppressed (``suppress_instrumentation()``, which
otel-diag's own diagnosis uses) are not traced, and a litellm call nested inside a traced
one (fallbacks) joins the outer span instead of counting twice.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Tracer, TracerProvider

from otel_diag import semconv as sc
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.litellm_calls import ACTIVE, LLMCall
from otel_diag.instrumentation.litellm_retries import wrap_sdk_sleep, wrap_with_retries
from otel_diag.version import __version__

_CALLS: dict[str, tuple[str, bool]] = {
    "completion": (sc.OP_CHAT, False),
    "acompletion": (sc.OP_CHAT, True),
    "embedding": (sc.OP_EMBEDDINGS, False),
    "aembedding": (sc.OP_EMBEDDINGS, True),
}
_RETRIES: dict[str, tuple[bool, str]] = {
    "completion_with_retries": (False, "completion"),
    "acompletion_with_retries": (True, "acompletion"),
}
_SDK_CLIENTS = (("SyncAPIClient", False), ("AsyncAPIClient", True))
_MARKER = "__otel_diag_wrapped__"

_Patch = tuple[Any, str, Any, bool]  # owner, attribute, original, owner had it in __dict__


class LiteLLMInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """OpenTelemetry instrumentor for litellm (GenAI semantic conventions + cost)."""

    _patches: tuple[_Patch, ...] = ()
    _wanted = False
    _tracer: Tracer | None = None
    _lock = threading.Lock()
    _hook_registered = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("litellm >= 1.100",)

    def _instrument(self, **kwargs: Any) -> None:
        provider: TracerProvider | None = kwargs.get("tracer_provider")
        self._tracer = (
            provider.get_tracer(tracing.INSTRUMENTATION_NAME, __version__) if provider else None
        )
        self._wanted = True
        module = sys.modules.get("litellm")
        if module is not None:
            self._patch(module)
            return
        cls = type(self)
        with cls._lock:
            if not cls._hook_registered:
                cls._hook_registered = True
                wrapt.register_post_import_hook(_on_litellm_import, "litellm")

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            self._wanted = False
            for owner, name, original, had_own in reversed(self._patches):
                if not getattr(getattr(owner, name, None), _MARKER, False):
                    continue  # someone patched over us: leave their wrapper alone
                if had_own:
                    setattr(owner, name, original)
                else:
                    delattr(owner, name)
            self._patches = ()

    def tracer(self) -> Tracer:
        return self._tracer or tracing.get_tracer()

    def _patch(self, module: Any) -> None:
        with self._lock:
            if not self._wanted or self._patches:
                return
            patches: list[_Patch] = []
            for name, (operation, is_async) in _CALLS.items():
                _replace(patches, module, name, _call_factory(self, operation, is_async))
            for name, (is_async, call_name) in _RETRIES.items():
                make = functools.partial(wrap_with_retries, is_async=is_async, call_name=call_name)
                _replace(patches, module, name, make)
            base = sys.modules.get("openai._base_client")
            for class_name, is_async in _SDK_CLIENTS:
                owner = getattr(base, class_name, None) if base is not None else None
                if owner is not None:
                    sleep = functools.partial(wrap_sdk_sleep, is_async=is_async)
                    _replace(patches, owner, "_sleep_for_retry", sleep)
            self._patches = tuple(patches)


def _replace(patches: list[_Patch], owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = getattr(owner, name, None)
    if original is None or getattr(original, _MARKER, False):
        return
    had_own = name in vars(owner)
    wrapper = make(original)
    setattr(wrapper, _MARKER, True)
    setattr(owner, name, wrapper)
    patches.append((owner, name, original, had_own))


def _on_litellm_import(module: Any) -> None:
    instrumentor = LiteLLMInstrumentor()
    if instrumentor._wanted:
        try:
            instrumentor._patch(module)
        except Exception:
            tracing.internal_error("patching litellm")


def _begin(instrumentor: LiteLLMInstrumentor, operation: str, args: Any, kwargs: Any) -> Any:
    if ACTIVE.get() is not None or not is_instrumentation_enabled():
        return None
    try:
        return LLMCall(instrumentor.tracer(), operation, args, kwargs)
    except Exception:
        tracing.internal_error("starting an LLM span")
        return None


def _call_factory(
    instrumentor: LiteLLMInstrumentor, operation: str, is_async: bool
) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        if is_async:

            @functools.wraps(original)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call: LLMCall | None = _begin(instrumentor, operation, args, kwargs)
                if call is None:
                    return await original(*args, **kwargs)
                active = ACTIVE.set(call)
                token = otel_context.attach(call.context())
                try:
                    result = await original(*args, **kwargs)
                except BaseException as exc:
                    otel_context.detach(token)
                    ACTIVE.reset(active)
                    call.fail(exc)
                    raise
                otel_context.detach(token)
                ACTIVE.reset(active)
                return call.succeed(result)

            return async_wrapper

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call: LLMCall | None = _begin(instrumentor, operation, args, kwargs)
            if call is None:
                return original(*args, **kwargs)
            active = ACTIVE.set(call)
            token = otel_context.attach(call.context())
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                otel_context.detach(token)
                ACTIVE.reset(active)
                call.fail(exc)
                raise
            otel_context.detach(token)
            ACTIVE.reset(active)
            return call.succeed(result)

        return wrapper

    return make
