"""Which source and category an exception belongs to, decided from the exception object.

The projection classifies stored errors from their type *name* and message
(:mod:`otel_diag.classify`). In-process we hold the exception itself, so its
classes decide first: by class name anywhere in the MRO (most specific first) and by the
module they come from (SQLAlchemy, psycopg, sqlite3... are storage), without importing
litellm, openai, httpx or SQLAlchemy to test ``isinstance``. Only what that leaves open goes
to the shared message rules.
"""

from __future__ import annotations

from otel_diag.classify import classify

# Exception class names (any class in the MRO, most specific first) -> category. Names, not
# classes: litellm, openai, httpx and requests are never imported to classify their errors.
_BY_CLASS_NAME: dict[str, str] = {
    "ContextWindowExceededError": "context_length",
    "RateLimitError": "rate_limit",
    "TooManyRequests": "rate_limit",
    "ResourceExhausted": "rate_limit",
    "Timeout": "timeout",
    "TimeoutError": "timeout",
    "APITimeoutError": "timeout",
    "TimeoutException": "timeout",
    "ReadTimeout": "timeout",
    "ConnectTimeout": "timeout",
    "WriteTimeout": "timeout",
    "PoolTimeout": "timeout",
    "DeadlineExceeded": "timeout",
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "ContentPolicyViolationError": "invalid_request",
    "UnsupportedParamsError": "invalid_request",
    "UnprocessableEntityError": "invalid_request",
    "BadRequestError": "invalid_request",
    "ServiceUnavailableError": "dependency",
    "InternalServerError": "dependency",
    "BadGatewayError": "dependency",
    "APIConnectionError": "dependency",
    "ConnectionError": "dependency",
    "ConnectError": "dependency",
    "RemoteProtocolError": "dependency",
    "JSONDecodeError": "output_parse",
    "ValidationError": "validation",
}
# Only meaningful for errors of LLM client libraries (elsewhere "not found" is a tool error).
_LLM_CLASS_NAMES: dict[str, str] = {"NotFoundError": "invalid_request"}
_LLM_MODULES = frozenset({"litellm", "openai", "anthropic", "google", "mistralai", "cohere"})
_STORAGE_MODULES = frozenset(
    {"sqlalchemy", "psycopg", "psycopg2", "sqlite3", "asyncpg", "pymysql", "MySQLdb", "aiosqlite"}
    | {"pymongo", "motor", "redis", "elasticsearch", "boto3", "botocore"}
)


def _root_module(cls: type) -> str:
    return (cls.__module__ or "").split(".", 1)[0]


def _by_class(exc: BaseException) -> tuple[str | None, bool]:
    """(category from the exception's classes or None, whether it is an LLM client error)."""
    mro = type(exc).__mro__
    is_llm = _root_module(mro[0]) in _LLM_MODULES
    for cls in mro:
        root = _root_module(cls)
        if root in _STORAGE_MODULES and cls is not BaseException:
            return "storage", False
        category = _BY_CLASS_NAME.get(cls.__name__)
        if category is None and root in _LLM_MODULES:
            category = _LLM_CLASS_NAMES.get(cls.__name__)
        if category is not None:
            return category, is_llm
    return None, is_llm


def _source_for(category: str, step_kind: str | None, is_llm: bool) -> str:
    if category == "storage":
        return "storage"
    if is_llm or step_kind == "llm":
        return "llm"
    if step_kind == "tool":
        return "tool"
    if category == "validation":
        return "validation"
    if step_kind in ("agent", "activity"):
        return "activity"
    return "api"


def type_name(exc: BaseException) -> str:
    """The exception's qualified type name, as the OpenTelemetry SDK writes ``exception.type``."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def classify_exception(
    exc: BaseException,
    step_kind: str | None = None,
    *,
    source: str | None = None,
    category: str | None = None,
) -> tuple[str, str]:
    """``(source, category)`` of an exception raised in a step of ``step_kind``.

    Explicit values win. Then the exception's classes decide (a litellm ``Timeout`` is a
    timeout although it is also an ``APIConnectionError``); then the message rules shared
    with the projection; then the exception it was raised from; a plain ``ValueError``
    nothing else explains is a validation error.
    """
    by_class, is_llm = _by_class(exc)
    if category is None:
        category = by_class
    if category is None:
        message = str(exc)[:2000]
        _, category = classify(type(exc).__name__, message, step_kind)
        if category in ("internal", "tool_error"):
            # A generic error raised while handling a specific one (a retry helper that
            # failed after a rate limit) is explained by that one.
            origin = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
            if origin is not None and origin is not exc:
                origin_category, origin_llm = _by_class(origin)
                if origin_category is not None:
                    category, is_llm = origin_category, is_llm or origin_llm
        if category in ("internal", "tool_error") and isinstance(exc, ValueError):
            category = "validation"
    if source is None:
        source = _source_for(category, step_kind, is_llm)
    return source, category
