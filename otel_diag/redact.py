"""Secret redaction and text hygiene for everything otel-diag stores or sends to an LLM.

Why here and not in the database layer: the same text goes to the store, to the diagnosis
prompt and to span attributes captured by the decorators, and each of those must be clean.
Each pattern is gated by cheap substring tests, so clean text never pays for a regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
TRUNCATION_MARKER = "…[truncated {n} chars]"

_SECRET_KEY_NAMES = (
    r"api[_-]?key|apikey|secret|password|passwd|passphrase|pwd|token(?!s\b|_?count|izer)|"
    r"access[_-]?key|private[_-]?key|authorization|credential|cookie"
)

# (gate, pattern): a pattern only runs when its gate -- cheap substring tests on the text
# and its lowercase form -- says it could match, so clean text (almost all text) costs a
# few ``in`` checks instead of a regex pass. Group "keep", where present, is a harmless
# prefix kept in the output, so the text still says what was there ("password=[REDACTED]").
# Patterns are bounded and anchored at word starts: unbounded ``[\w.-]*`` runs backtrack
# quadratically on long words.
_Gate = Callable[[str, str], bool]
_KEY_HINTS = (
    "key",
    "secret",
    "passw",
    "passph",
    "pwd",
    "token",
    "authorization",
    "credential",
    "cookie",
)
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA")
_RULES: list[tuple[_Gate, re.Pattern[str]]] = [
    (  # URLs with credentials: scheme://user:password@host (the user may be empty, as in
        # redis://:pw@host; the password may contain '@' or ':', so it runs to the last '@')
        lambda t, low: "://" in t and "@" in t,
        re.compile(
            r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^\s:/@]{0,256}:)[^\s/]{1,256}(?=@)"
        ),
    ),
    (  # PEM private keys
        lambda t, low: "PRIVATE KEY" in t,
        re.compile(
            r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[\s\S]{0,20000}?"
            r"-----END [A-Z ]{0,20}PRIVATE KEY-----"
        ),
    ),
    (  # key=value / key: value / "key": "value" pairs whose key names a secret; a quoted
        # value is redacted whole, spaces included
        lambda t, low: ("=" in t or ":" in t) and any(h in low for h in _KEY_HINTS),
        re.compile(
            r"(?P<keep>(?i:\b[\w.-]{0,32}(?:"
            + _SECRET_KEY_NAMES
            + r")[\w.-]{0,32})[\"']?\s*[:=]\s*[\"']?(?i:(?:bearer|basic|token)\s+)?)"
            r"(?!\[REDACTED\])"
            r"(?:(?<=\")[^\"\n]{1,256}(?=\")|(?<=')[^'\n]{1,256}(?=')|[^\s\"',;}&]{3,})"
        ),
    ),
    (  # Authorization schemes / bearer tokens
        lambda t, low: "bearer" in low or "basic" in low or "token" in low,
        re.compile(r"(?P<keep>(?i:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    ),
    (  # OpenAI / Anthropic style keys
        lambda t, low: "sk-" in t,
        re.compile(r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}"),
    ),
    (  # AWS access key ids
        lambda t, low: any(p in t for p in _AWS_PREFIXES),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),
    ),
    (lambda t, low: "gh" in t and "_" in t, re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}")),  # GitHub
    (lambda t, low: "xox" in t, re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),  # Slack
    (lambda t, low: "AIza" in t, re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),  # Google
    (  # JWTs
        lambda t, low: "eyJ" in t,
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
]
_SECRET_KEY_RE = re.compile(_SECRET_KEY_NAMES, re.IGNORECASE)


def _replace(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return keep + REDACTED if keep else REDACTED


def redact(text: str) -> str:
    """Replace API keys, bearer tokens, URL passwords, AWS keys and key=secret pairs."""
    low = text.lower()
    for gate, pattern in _RULES:
        if gate(text, low):
            text = pattern.sub(_replace, text)
    return text


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
        marker = TRUNCATION_MARKER.format(n=len(text) - limit)
        text = (text[: max(0, limit - len(marker))] + marker)[:limit]
    return text


def safe_text(value: Any, limit: int | None = None) -> str:
    """:func:`clean_text` then :func:`redact`: what every stored free-text field goes through.

    Redaction runs on a bounded prefix first (so a 1 MB message costs one bounded pass),
    then the result is truncated to ``limit``. Short strings (names, models) repeat a lot
    and are cached.
    """
    if type(value) is str and len(value) <= 256:
        return _safe_short(value, limit)
    return _safe_text(value, limit)


@lru_cache(maxsize=8192)
def _safe_short(value: str, limit: int | None) -> str:
    return _safe_text(value, limit)


def _safe_text(value: Any, limit: int | None) -> str:
    text = clean_text(value)
    original = len(text)
    if limit is not None and original > 2 * limit:
        text = text[: 2 * limit]
    text = redact(text)
    if limit is not None and (len(text) > limit or original > 2 * limit):
        # The marker fits inside ``limit``: the result must fit a VARCHAR(limit) column.
        marker = TRUNCATION_MARKER.format(n=original - limit)
        keep = max(0, limit - len(marker))
        text = (text[:keep] + marker)[:limit]
    return text


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (its last dotted part) names a secret: password, api_key, ..."""
    last = key.rsplit(".", 1)[-1]
    return bool(_SECRET_KEY_RE.search(last)) and not key.startswith("gen_ai.usage")


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
        if is_secret_key(k):
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
