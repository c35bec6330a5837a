"""Error classification: (type, message, step kind) -> source and category.

An explicit ``otel_diag.error.category`` / ``.source`` on the span always wins; otherwise
ordered patterns over the exception type and message decide. Order matters: a litellm
``ContextWindowExceededError`` is also a ``BadRequestError``, an ``APITimeoutError`` also a
connection error, so the narrower meaning is tested first.
"""

from __future__ import annotations

import hashlib
import re

CATEGORIES = (
    "rate_limit",
    "context_length",
    "timeout",
    "auth",
    "storage",
    "output_parse",
    "validation",
    "invalid_request",
    "dependency",
    "tool_error",
    "internal",
)

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "rate_limit",
        re.compile(
            r"ratelimit|rate[ _-]?limit|\b429\b|quota|too many requests|resourceexhausted|"
            r"insufficient_quota|throttl",
            re.I,
        ),
    ),
    (
        "context_length",
        re.compile(
            r"contextwindow|context[ _-]?length|context window|maximum context|"
            r"too many tokens|token limit|prompt is too long|max_tokens_exceeded",
            re.I,
        ),
    ),
    ("timeout", re.compile(r"timeout|timed out|deadline ?exceeded|time limit", re.I)),
    (
        "auth",
        re.compile(
            r"authentication|unauthori[sz]ed|\b401\b|\b403\b|permission|forbidden|"
            r"invalid[ _-]?api[ _-]?key|access ?denied|not authorized|credentials",
            re.I,
        ),
    ),
    (
        "storage",
        re.compile(
            r"sqlalchemy|operationalerror|integrityerror|psycopg|sqlite3?\b|\bdatabase\b|"
            r"deadlock|dbapierror|programmingerror|unique constraint|no such table",
            re.I,
        ),
    ),
    (
        "output_parse",
        re.compile(
            r"jsondecodeerror|outputparser|could not parse|failed to parse|parse error|"
            r"invalid json|malformed (?:json|output|response)|expecting value",
            re.I,
        ),
    ),
    (
        "validation",
        re.compile(
            r"validationerror|validation|invalid argument|missing required|required field|"
            r"schema|field required|unexpected keyword|missing \d+ required",
            re.I,
        ),
    ),
    (
        "invalid_request",
        re.compile(r"badrequest|bad request|\b400\b|invalidrequest|invalid request|\b422\b", re.I),
    ),
    (
        "dependency",
        re.compile(
            r"connection|connect|serviceunavailable|service unavailable|\b50[0234]\b|"
            r"unreachable|name or service not known|dns|internalservererror|"
            r"bad gateway|remote end closed|broken pipe|econnrefused",
            re.I,
        ),
    ),
]

_STORAGE_HINT = re.compile(r"sqlalchemy|psycopg|sqlite|database", re.I)
_VALIDATION_HINT = re.compile(r"validationerror|validation", re.I)

# Message masks for fingerprints, applied in order: what varies between occurrences of one
# error (ids, numbers, quoted values, addresses) becomes a placeholder, so "sku 48213 out of
# stock in warehouse 7f3a9c1e-..." and "sku 77 out of stock in warehouse 0b12..." are one
# shape even when the exception type is as generic as ``Exception``.
_NORMALIZE = [
    (re.compile(r"\b[a-z][a-z0-9+.-]{0,30}://[^\s'\"<>()]+", re.I), "<url>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<id>"),
    (re.compile(r"'[^']{0,200}'|\"[^\"]{0,200}\"|`[^`]{0,200}`"), "<str>"),
    (re.compile(r"(?:\b[a-z]:)?(?:[\\/][\w.@~+-]{1,100}){2,}[\\/]?", re.I), "<path>"),
    # hex ids, also the rare ones without a digit (no English word is 8 letters of a-f)
    (re.compile(r"\b0x[0-9a-f]+\b|(?<![a-z0-9])[a-f]{8,}(?![a-z0-9])", re.I), "<id>"),
    # any word with a digit in it: numbers, short hex ids, "req_8f7a", "v2", "item-42"
    (re.compile(r"[a-z_]*\d\w*", re.I), "<id>"),
    (re.compile(r"(?:<id>[.:,-]?)+<id>"), "<id>"),
    (re.compile(r"\s+"), " "),
]


def _first_match(text: str) -> str | None:
    for name, pattern in _RULES:
        if pattern.search(text):
            return name
    return None


def classify(
    error_type: str | None,
    message: str | None,
    step_kind: str | None,
    *,
    source: str | None = None,
    category: str | None = None,
) -> tuple[str, str]:
    """Return ``(source, category)`` for one error."""
    text = f"{error_type or ''} {(message or '')[:2000]}"
    if category is None:
        # The exception type is the stronger signal (a ConnectionError whose message says
        # "timed out" is a dependency failure), except for generic request errors whose
        # message tells what was wrong (a BadRequestError about the context length).
        by_type = _first_match(error_type or "")
        if by_type is not None and by_type != "invalid_request":
            category = by_type
        else:
            category = _first_match((message or "")[:2000]) or by_type
        if category is None:
            category = "tool_error" if step_kind == "tool" else "internal"
    if source is None:
        if category == "storage" and _STORAGE_HINT.search(text):
            source = "storage"
        elif step_kind == "llm":
            source = "llm"
        elif step_kind == "tool":
            source = "tool"
        elif category == "validation" and _VALIDATION_HINT.search(text):
            source = "validation"
        elif step_kind in ("agent", "activity"):
            source = "activity"
        else:
            source = "api"
    return source, category


def normalize_message(message: str | None) -> str:
    """The message with URLs, e-mail addresses, paths, ids, numbers and quoted values masked."""
    text = (message or "")[:500]
    for pattern, repl in _NORMALIZE:
        text = pattern.sub(repl, text)
    return text.strip().lower()[:200]


def fingerprint(
    source: str, category: str, error_type: str | None, step_name: str | None, message: str | None
) -> str:
    """Same error shape -> same fingerprint (16 hex chars)."""
    key = "|".join(
        (source, category, error_type or "", step_name or "", normalize_message(message))
    )
    return hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).hexdigest()
