"""Secret redaction and text hygiene for everything otel-diag stores or sends to an LLM.

Why here and not in the database layer: the same text goes to the store, to the diagnosis
prompt and to span attributes captured by the decorators, and each of those must be clean.
Each pattern is gated by cheap substring tests, so clean text never pays for a regex.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
TRUNCATION_MARKER = "…[truncated {n} chars]"

_SECRET_KEY_NAMES = (
    r"api[_-]?key|apikey|secret|password|passwd|passphrase|pwd|token(?!s\b|_?count|izer)|"
    r"access[_-]?key|private[_-]?key|account[_-]?key|app(?:lication)?[_-]?key|"
    r"shared[_-]?access[_-]?key|signature|authorization|credential|cookie"
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
    "signature",
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
    (  # an AWS secret key next to its key id, unlabeled ("AKIA... wJalr..."): both go
        lambda t, low: any(p in t for p in _AWS_PREFIXES),
        re.compile(
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b[^A-Za-z0-9/+]{1,8}"
            r"(?:[\w.-]{1,24}[^A-Za-z0-9/+]{1,4}){0,2}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
        ),
    ),
    (  # AWS access key ids
        lambda t, low: any(p in t for p in _AWS_PREFIXES),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),
    ),
    (  # GitHub classic and fine-grained tokens
        lambda t, low: ("gh" in t or "github_pat_" in t) and "_" in t,
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})"),
    ),
    (lambda t, low: "xox" in t, re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),  # Slack
    (  # Slack / Discord-style incoming webhook URLs: the path is the credential
        lambda t, low: "hooks.slack.com" in low or "/api/webhooks/" in low,
        re.compile(
            r"(?P<keep>(?i:https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)|"
            r"[\w.-]{1,64}/api/webhooks)/))[A-Za-z0-9_/+-]{8,256}"
        ),
    ),
    (lambda t, low: "AIza" in t, re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),  # Google
    (  # Stripe secret and restricted keys, webhook secrets
        lambda t, low: "_live_" in t or "_test_" in t or "whsec_" in t,
        re.compile(r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9+/=]{16,})"),
    ),
    (  # Hugging Face, npm, GitLab, Shopify and Twilio API-key tokens
        lambda t, low: any(p in t for p in ("hf_", "npm_", "glpat-", "shp", "SK")),
        re.compile(
            r"\b(?:hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|glpat-[A-Za-z0-9_-]{20,}|"
            r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|SK[0-9a-f]{32})\b"
        ),
    ),
    (  # SendGrid
        lambda t, low: "SG." in t,
        re.compile(r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"),
    ),
    (  # Twilio credentials written as AccountSid:AuthToken (basic-auth style)
        lambda t, low: "AC" in t,
        re.compile(r"(?P<keep>\bAC[0-9a-f]{32}:)[0-9a-f]{32}\b"),
    ),
    (  # signed URLs: S3 presigned (X-Amz-Signature / -Credential / -Security-Token), GCS,
        # Azure SAS (sig=)
        lambda t, low: "x-amz-" in low or "x-goog-" in low or "sig=" in low,
        re.compile(
            r"(?P<keep>(?i:[?&](?:x-amz-(?:signature|credential|security-token)|"
            r"x-goog-(?:signature|credential)|sig)=))[^&\s\"'#]{6,}"
        ),
    ),
    (  # JWTs
        lambda t, low: "eyJ" in t,
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
]

# The catch-all for formats no rule names: a long random-looking token a few words after a
# key-like word ("the key wJalr...KEY was rejected", "secret is 3f9Q..."). Random means
# high Shannon entropy and mixed letters and digits, so words, hex ids and UUIDs stay.
_NEAR_KEY_WORD = re.compile(
    r"(?i:\b(?:key|secret|token|credential|password|passwd|signature|auth)[\w-]{0,16})"
    r"(?:[^A-Za-z0-9\n]{1,4}[A-Za-z]{1,12}){0,3}[^A-Za-z0-9\n]{1,4}"
    r"(?P<token>[A-Za-z0-9+/_=.~-]{24,256})(?![A-Za-z0-9+/_=.~-])"
)
_ENTROPY_BITS = 4.0
"""Bits per character: above what hex (at most 4) and English words reach."""


def _entropy(token: str) -> float:
    counts: dict[str, int] = {}
    for char in token:
        counts[char] = counts.get(char, 0) + 1
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _random_token(match: re.Match[str]) -> str:
    token = match.group("token")
    random_looking = (
        REDACTED not in token
        and any(c.isdigit() for c in token)
        and any(c.isalpha() for c in token)
        and _entropy(token) > _ENTROPY_BITS
    )
    if not random_looking:
        return match.group(0)
    start = match.start("token") - match.start(0)
    return match.group(0)[:start] + REDACTED


_SECRET_KEY_RE = re.compile(_SECRET_KEY_NAMES, re.IGNORECASE)


def _replace(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return keep + REDACTED if keep else REDACTED


def redact(text: str) -> str:
    """Replace API keys and tokens of known formats, URL passwords and signatures, key=secret
    pairs, and long random tokens next to a key-like word."""
    low = text.lower()
    for gate, pattern in _RULES:
        if gate(text, low):
            text = pattern.sub(_replace, text)
    if any(h in low for h in _KEY_HINTS) or "auth" in low:
        text = _NEAR_KEY_WORD.sub(_random_token, text)
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
        text = truncate(text, limit)
    return text


def truncate(text: str, limit: int, *, total: int | None = None) -> str:
    """``text`` cut to fit ``limit`` characters, the cut said by the truncation marker.

    The marker fits inside ``limit`` (the result must fit a ``VARCHAR(limit)`` column);
    ``total`` is the full length when ``text`` is already a prefix of something longer.
    """
    length = len(text) if total is None else total
    if length <= limit:
        return text
    marker = TRUNCATION_MARKER.format(n=length - limit)
    return (text[: max(0, limit - len(marker))] + marker)[:limit]


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
        text = truncate(text, limit, total=max(original, len(text)))
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
