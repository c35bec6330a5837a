"""The only module in otel-diag that calls an LLM for diagnosis, through litellm.

litellm is imported here, lazily, on the first call (it costs seconds); its price map is
read locally (``otel_diag/__init__.py`` defaults ``LITELLM_LOCAL_MODEL_COST_MAP``). Every
request is bounded: a timeout per attempt (``OTEL_DIAG_LLM_TIMEOUT``), our own retry loop
for transient failures only (429, 5xx, timeouts, connection errors;
``OTEL_DIAG_LLM_RETRIES``) with litellm's and the OpenAI client's own retries off, and a
process-wide limit on concurrent requests (``OTEL_DIAG_DIAGNOSIS_CONCURRENCY``). The
request runs under ``suppress_instrumentation()`` so our own diagnosis is never traced into
our store (and so never diagnosed).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_diag.config import Settings
from otel_diag.diagnosis.prompt import estimate_tokens
from otel_diag.logs import import_quietly, quiet_libraries
from otel_diag.redact import safe_text

MAX_COMPLETION_TOKENS = 800
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 4.0
RETRYABLE = frozenset({"rate_limited", "timeout", "llm_unavailable"})

_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


@dataclass(frozen=True, slots=True)
class LLMResult:
    """One answered request: the raw content and what it cost."""

    content: str | None
    model: str
    provider: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    attempts: int


class LLMCallError(Exception):
    """A request that got no usable answer; ``reason`` is stored as the fallback reason."""

    def __init__(self, reason: str, detail: str, *, latency_ms: float, attempts: int) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.latency_ms = latency_ms
        self.attempts = attempts


def load_litellm() -> Any:
    """litellm, imported once without its import-time warnings and held to WARNING
    (see :mod:`otel_diag.logs`; DEBUG on the ``otel_diag`` logger shows everything)."""
    litellm: Any = import_quietly("litellm")
    litellm.suppress_debug_info = True
    quiet_libraries()
    return litellm


def missing_credentials(settings: Settings) -> tuple[str, ...]:
    """The provider's API-key variables the diagnosis model needs and the environment lacks.

    Empty (go ahead) when ``OTEL_DIAG_LLM_API_KEY`` or ``OTEL_DIAG_LLM_API_BASE`` is set (a
    gateway may take no key), or when litellm's own check (``validate_environment``, which
    reads the process environment, no network) finds the keys. Only ``*_API_KEY`` variables
    count: providers that authenticate otherwise (cloud roles, an ``OLLAMA_API_BASE``
    default) are never held back. Costs about a millisecond, so it is asked per diagnosis:
    exporting the key (or changing the settings) takes effect with the next run.
    """
    if settings.llm_api_key or settings.llm_api_base:
        return ()
    litellm = load_litellm()
    try:
        found = litellm.validate_environment(model=settings.llm_model)
    except Exception:  # an unknown model: let the request say what is wrong
        return ()
    if found.get("keys_in_environment"):
        return ()
    missing = tuple(str(k) for k in found.get("missing_keys") or ())
    return missing if missing and all(k.endswith("_API_KEY") for k in missing) else ()


def token_counter(model: str) -> Callable[[str], int]:
    """Count tokens as ``model`` does (litellm's tokenizers, offline); estimate on failure."""
    litellm = load_litellm()

    def count(text: str) -> int:
        try:
            return int(litellm.token_counter(model=model, text=text))
        except Exception:
            return estimate_tokens(text)

    return count


def _slot(concurrency: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        sem = _slots.get(concurrency)
        if sem is None:
            sem = _slots[concurrency] = threading.BoundedSemaphore(concurrency)
        return sem


def classify_failure(litellm: Any, exc: BaseException) -> str:
    """litellm / OpenAI exception -> fallback reason (narrowest class first)."""
    ex = litellm.exceptions
    table: list[tuple[tuple[str, ...], str]] = [
        (("Timeout",), "timeout"),
        (("RateLimitError",), "rate_limited"),
        (("ContextWindowExceededError",), "context_window"),
        (("AuthenticationError", "PermissionDeniedError"), "llm_auth"),
        (
            ("InternalServerError", "ServiceUnavailableError", "BadGatewayError"),
            "llm_unavailable",
        ),
        (("APIConnectionError",), "llm_unavailable"),
        (("BadRequestError", "NotFoundError", "UnprocessableEntityError"), "llm_bad_request"),
    ]
    for names, reason in table:
        classes = tuple(c for c in (getattr(ex, n, None) for n in names) if isinstance(c, type))
        if classes and isinstance(exc, classes):
            return reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "llm_error"


def _response_format(litellm: Any, model: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A strict JSON schema where litellm knows the model supports it, else JSON mode."""
    try:
        strict = bool(litellm.supports_response_schema(model=model))
    except Exception:
        strict = False
    if strict:
        return {
            "type": "json_schema",
            "json_schema": {"name": "diagnosis", "schema": schema, "strict": True},
        }
    return {"type": "json_object"}


def _provider(litellm: Any, model: str) -> str | None:
    try:
        return str(litellm.get_llm_provider(model)[1])
    except Exception:
        return None


def _cost(litellm: Any, response: Any) -> float | None:
    try:
        cost = litellm.completion_cost(completion_response=response)
    except Exception:
        return None
    return float(cost) if isinstance(cost, int | float) else None


def _request(settings: Settings, litellm: Any, messages: list[dict[str, str]]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": settings.llm_model,
        "messages": messages,
        "timeout": settings.llm_timeout,
        "num_retries": 0,
        "max_retries": 0,
        "temperature": 0,
        "max_tokens": MAX_COMPLETION_TOKENS,
        "drop_params": True,
    }
    if settings.llm_api_base:
        kwargs["api_base"] = settings.llm_api_base
    if settings.llm_api_key:
        kwargs["api_key"] = settings.llm_api_key
    elif (
        settings.llm_api_base
        and _provider(litellm, settings.llm_model) == "openai"
        and not os.environ.get("OPENAI_API_KEY")
    ):
        # Local OpenAI-compatible gateways (vLLM, Ollama) take no key, but the client needs one.
        kwargs["api_key"] = "no-key"
    return kwargs


def call_llm(
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    settings: Settings,
    *,
    backoff: float | None = None,
) -> LLMResult:
    """Ask ``settings.llm_model`` for a diagnosis; raises :class:`LLMCallError` on failure."""
    started = time.perf_counter()
    backoff = BACKOFF_SECONDS if backoff is None else backoff
    slot = _slot(settings.diagnosis_concurrency)
    budget = settings.llm_timeout * (settings.llm_retries + 1)
    if not slot.acquire(timeout=budget):
        raise LLMCallError(
            "concurrency", "no free diagnosis slot", latency_ms=0.0, attempts=0
        ) from None
    try:
        return _call(messages, schema, settings, backoff, started)
    finally:
        slot.release()


def _call(
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    settings: Settings,
    backoff: float,
    started: float,
) -> LLMResult:
    litellm = load_litellm()
    kwargs = _request(settings, litellm, messages)
    kwargs["response_format"] = _response_format(litellm, settings.llm_model, schema)
    attempt = 0
    while True:
        attempt += 1
        try:
            with suppress_instrumentation():
                response = litellm.completion(**kwargs)
            break
        except Exception as exc:
            reason = classify_failure(litellm, exc)
            elapsed = (time.perf_counter() - started) * 1000
            if reason == "llm_bad_request" and "response_format" in kwargs:
                # Some OpenAI-compatible servers reject response_format: ask without it.
                del kwargs["response_format"]
                continue
            if reason in RETRYABLE and attempt <= settings.llm_retries:
                time.sleep(min(BACKOFF_CAP_SECONDS, backoff * 2 ** (attempt - 1)))
                continue
            detail = safe_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 300)
            raise LLMCallError(reason, detail, latency_ms=elapsed, attempts=attempt) from None
    latency = (time.perf_counter() - started) * 1000
    usage = getattr(response, "usage", None)
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError):
        content = None
    return LLMResult(
        content=content if isinstance(content, str) else None,
        model=str(getattr(response, "model", None) or settings.llm_model),
        provider=_provider(litellm, settings.llm_model),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        cost_usd=_cost(litellm, response),
        latency_ms=latency,
        attempts=attempt,
    )
