"""Cost from litellm's local price map: reported wins, unknown is flagged, never $0."""

from __future__ import annotations

import pytest

from otel_diag.projection.cost import compute_cost, lookup_price
from tests.prices import cost as cost_of
from tests.prices import price


def test_prices_come_from_the_local_map_for_plain_prefixed_and_dated_model_names():
    plain = lookup_price("gpt-4o-mini")
    assert plain is not None and plain.input_per_token == pytest.approx(price("gpt-4o-mini")[0])
    assert lookup_price("openai/gpt-4o-mini") == plain
    assert lookup_price("gpt-4o-mini-2024-07-18") is not None
    assert lookup_price("gpt-4o-mini", provider="openai") == plain


def test_computed_cost_is_tokens_times_price():
    cost = compute_cost("gpt-4o-mini", "openai", 1000, 100, None)
    assert cost.source == "computed"
    assert cost.cost_usd == pytest.approx(cost_of("gpt-4o-mini", 1000, 100))


def test_reported_cost_wins_and_the_computed_one_is_kept_beside_it():
    cost = compute_cost("gpt-4o-mini", "openai", 1000, 100, 1.23)
    assert (cost.cost_usd, cost.reported_usd, cost.source) == (1.23, 1.23, "reported")
    assert cost.computed_usd == pytest.approx(cost_of("gpt-4o-mini", 1000, 100))


def test_unknown_model_with_tokens_is_unpriced_not_zero():
    cost = compute_cost("my-private-llm", None, 10, 10, None)
    assert cost.cost_usd is None and cost.source == "unpriced"


def test_no_tokens_and_no_reported_cost_means_no_cost_at_all():
    assert compute_cost("gpt-4o-mini", None, None, None, None).source is None
