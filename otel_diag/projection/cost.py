"""USD cost of an LLM call from model + tokens, using litellm's bundled price map.

The map is read straight from the JSON file litellm ships (no ``import litellm``: that costs
seconds and may touch the network), once per process. A cost reported on the span wins;
an unknown model yields ``None`` with ``cost_source = "unpriced"``, never a silent $0.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from otel_diag import semconv as sc

logger = logging.getLogger(__name__)

PRICE_FILE = "model_prices_and_context_window_backup.json"

_DATE_SUFFIX = re.compile(r"-\d{4}-?\d{2}-?\d{2}$")

_lock = threading.Lock()
_prices: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Price:
    input_per_token: float
    output_per_token: float


@dataclass(frozen=True, slots=True)
class Cost:
    """The stored cost fields of one LLM call."""

    cost_usd: float | None
    reported_usd: float | None
    computed_usd: float | None
    source: str | None  # reported | computed | unpriced | None (no LLM usage)


def _price_file() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_FILE
    return path if path.is_file() else None


def price_table() -> dict[str, Any]:
    global _prices
    if _prices is None:
        with _lock:
            if _prices is None:
                path = _price_file()
                table: dict[str, Any] = {}
                if path is None:
                    logger.warning("litellm price map not found; LLM costs will be unpriced")
                else:
                    table = json.loads(path.read_text(encoding="utf-8"))
                    table.pop("sample_spec", None)
                _prices = table
    return _prices


def _entry_price(entry: Any) -> Price | None:
    if not isinstance(entry, dict):
        return None
    inp, out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if inp is None and out is None:
        return None
    return Price(float(inp or 0.0), float(out or 0.0))


@lru_cache(maxsize=4096)
def lookup_price(model: str, provider: str | None = None) -> Price | None:
    """Price per token for ``model`` (as spans name it), or None if litellm has no price."""
    table = price_table()
    model = model.strip()
    candidates = [model, model.lower()]
    if provider:
        prefix = sc.GENAI_PROVIDER_PREFIXES.get(provider.lower(), provider.lower())
        candidates.append(f"{prefix}/{model}")
    if "/" in model:
        candidates.append(model.split("/", 1)[1])
    undated = _DATE_SUFFIX.sub("", model)
    if undated != model:
        candidates.append(undated)
    for name in candidates:
        price = _entry_price(table.get(name))
        if price is not None:
            return price
    return None


def compute_cost(
    model: str | None,
    provider: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    reported: float | None,
) -> Cost:
    """Reported cost wins; else price x tokens; unknown price with tokens -> unpriced."""
    has_tokens = bool(input_tokens) or bool(output_tokens)
    computed = None
    if model and (has_tokens or reported is not None):
        price = lookup_price(model, provider)
        if price is not None:
            computed = (input_tokens or 0) * price.input_per_token + (
                output_tokens or 0
            ) * price.output_per_token
    if reported is not None:
        return Cost(reported, reported, computed, "reported")
    if computed is not None:
        return Cost(computed, None, computed, "computed")
    if has_tokens:
        return Cost(None, None, None, "unpriced")
    return Cost(None, None, None, None)
