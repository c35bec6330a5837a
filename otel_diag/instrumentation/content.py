"""Arguments, results and messages as span attribute text: bounded, cleaned and redacted.

Content is recorded only when capture is on (see :func:`tracing.capture_content`). Even
then a span must not carry a megabyte of prompt or a secret: every value is rendered with
bounded effort (``reprlib`` limits, so a huge list costs no more than a small one), then
truncated and redacted by :func:`otel_diag.redact.safe_text`.
"""

from __future__ import annotations

import inspect
import json
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

from otel_diag.redact import safe_text

CONTENT_CHARS = 4096
"""Longest content attribute, in characters, before truncation with a marker."""

_SKIP_PARAMS = frozenset({"self", "cls"})

_repr = reprlib.Repr()
_repr.maxlevel = 4
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 20
_repr.maxdict = 20
_repr.maxstring = CONTENT_CHARS
_repr.maxother = 512


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able, bounded view of ``value`` (containers of scalars stay structured)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[: CONTENT_CHARS + 1]
    if depth < 3 and isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value[:20]]
    if depth < 3 and isinstance(value, Mapping):
        return {str(k)[:200]: _plain(v, depth + 1) for k, v in list(value.items())[:20]}
    dump = getattr(value, "model_dump", None)  # pydantic models (litellm responses too)
    if depth < 3 and callable(dump):
        try:
            return _plain(dump(), depth + 1)
        except Exception:
            pass
    return _repr.repr(value)


def render(value: Any, limit: int = CONTENT_CHARS) -> str:
    """``value`` as redacted text of at most ``limit`` characters (plus a truncation marker)."""
    plain = _plain(value)
    text = plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False, default=str)
    return safe_text(text, limit)


class ArgumentRenderer:
    """Renders a call's arguments by parameter name; the signature is read once, lazily."""

    __slots__ = ("_func", "_signature")

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func = func
        self._signature: inspect.Signature | None = None

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        if self._signature is None:
            try:
                self._signature = inspect.signature(self._func)
            except (TypeError, ValueError):
                self._signature = inspect.Signature()
        try:
            bound = self._signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            bound = {"args": list(args), **kwargs}
        named = {k: v for k, v in bound.items() if k not in _SKIP_PARAMS}
        return render(named)


def parameter_index(func: Callable[..., Any], name: str) -> int | None:
    """Position of parameter ``name`` in ``func``'s signature (None if it has none)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    for i, param in enumerate(params):
        if param.name == name and param.kind in (
            param.POSITIONAL_OR_KEYWORD,
            param.POSITIONAL_ONLY,
            param.KEYWORD_ONLY,
        ):
            return i if param.kind != param.KEYWORD_ONLY else -1
    return None
