"""Secret redaction and text hygiene for everything otel-diag stores or sends to an LLM.

Why here and not in the database layer: the same text goes to the store, to the diagnosis
prompt and to span attributes captured by the decorators, and each of those must be clean.
One compiled alternation keeps the cost to a single regex pass per field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
TRUNCATION_MARKER = "…[truncated {n} chars]"

_SECRET_KEY_NAMES = (
    r"api[_-]?key|apikey|secret|password|passwd|pwd|token(?!s\b|_?count|izer)|access[_-]?key|"
    r"private[_-]?key|authorization|credential"
)

# Each pattern keeps a harmless prefix in group "keep" where one exists, so the redacted
# text still says what was there ("password=[REDACTED]").
_PATTERNS = [
    # URLs with credentials: scheme://user:password@host
    r"(?P<u1>\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^\s:/@]{1,256}:)[^\s@/]{1,256}(?=@)",
    # Authorization headers / bearer tokens
    r"(?P<b1>(?i:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}",
    # key=value / key: value / "key": "value" pairs whose key names a secret
    # (bounded and anchored at a word start: an unbounded [\w.-]* backtracks quadratically)
    r"(?P<k1>(?i:\b[\w.-]{0,32}(?:"
    + _SECRET_KEY_NAMES
    + r")[\w.-]{0,32})[\"']?\s*[:=]\s*[\"']?(?i:(?:bearer|basic|token)\s+)?)"
    r"(?!\[REDACTED\])[^\s\"',;}&]{3,}",
    # OpenAI / Anthropic style keys
    r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}",
    # AWS access key ids
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b",
    # GitHub, Slack, Google tokens
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    # JWTs
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
]
_SECRET_RE = re.compile("|".join(_PATTERNS))
_SECRET_KEY_RE = re.compile(_SECRET_KEY_NAMES, re.IGNORECASE)
_PREFIX_GROUPS = ("u1", "b1", "k1")


def _replace(match: re.Match[str]) -> str:
    for group in _PREFIX_GROUPS:
        prefix = match.group(group)
        if prefix is not None:
            return prefix + REDACTED
    return REDACTED


def redact(text: str) -> str:
    """Replace API keys, bearer tokens, URL passwords, AWS keys and key=secret pairs."""
    return _SECRET_RE.sub(_replace, text)


def clean_text(value: Any, limit: int | None = None) -> str:
    """Make any value storable text: str, NUL-free, valid UTF-8, at most ``limit`` chars.

    PostgreSQL rejects NUL bytes and lone surrogates; SQLite would store them but nothing
    downstream could render them. Bytes are decoded with replacement characters.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(text) > limit:
        cut = len(text) - limit
        text = text[:limit] + TRUNCATION_MARKER.format(n=cut)
    return text


def safe_text(value: Any, limit: int | None = None) -> str:
    """:func:`clean_text` then :func:`redact`: what every stored free-text field goes through.

    Redaction runs on a bounded prefix first (so a 1 MB message costs one bounded pass),
    then the result is truncated to ``limit``.
    """
    text = clean_text(value)
    if limit is not None and len(text) > 2 * limit:
        text = text[: 2 * limit]
        dropped = True
    else:
        dropped = False
    text = redact(text)
    if limit is not None and (len(text) > limit or dropped):
        original = len(clean_text(value)) if dropped else len(text)
        text = text[:limit] + TRUNCATION_MARKER.format(n=original - limit)
    return text


def redact_mapping(
    data: Mapping[str, Any], *, value_limit: int = 1024, max_items: int = 64
) -> dict[str, Any]:
    """A JSON-safe copy of ``data``: secret-named keys blanked, strings redacted and bounded."""
    out: dict[str, Any] = {}
    for i, (key, value) in enumerate(data.items()):
        if i >= max_items:
            out["_truncated_items"] = len(data) - max_items
            break
        k = clean_text(key, 200)
        if _SECRET_KEY_RE.search(k.rsplit(".", 1)[-1]) and not k.startswith("gen_ai.usage"):
            out[k] = REDACTED
        else:
            out[k] = _json_value(value, value_limit)
    return out


def _json_value(value: Any, limit: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, list | tuple):
        return [_json_value(v, limit) for v in list(value)[:32]]
    if isinstance(value, Mapping):
        return redact_mapping(value, value_limit=limit, max_items=32)
    return safe_text(value, limit)
