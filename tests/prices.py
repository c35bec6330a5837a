"""Prices as litellm's own bundled price map states them, read without otel-diag's code.

Tests compare otel-diag's computed costs with these, so a litellm upgrade that changes a
price changes the expectation too, and the check stays independent of the code under test.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files


@cache
def _map() -> dict[str, dict[str, float]]:
    text = files("litellm").joinpath("model_prices_and_context_window_backup.json").read_text()
    return dict(json.loads(text))


def price(model: str) -> tuple[float, float]:
    """(USD per input token, USD per output token) of ``model`` in litellm's map."""
    entry = _map()[model]
    return float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])


def cost(model: str, input_tokens: int, output_tokens: int) -> float:
    inp, out = price(model)
    return input_tokens * inp + output_tokens * out
