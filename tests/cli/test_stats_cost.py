"""``otel-diag stats`` and ``otel-diag cost``: the per-agent comparison and where money went."""

from __future__ import annotations

import json

import psycopg
import pytest

from otel_diag.projection.cost import lookup_price
from tests.cli.conftest import Fleet, Invoke


def _gpt4o_mini(input_tokens: int, output_tokens: int) -> float:
    price = lookup_price("gpt-4o-mini", "openai")
    assert price is not None
    return input_tokens * price.input_per_token + output_tokens * price.output_per_token


def test_stats_compares_agents_by_failure_rate_and_p50_p95_duration(cli: Invoke) -> None:
    result = cli("stats", "--json", "--since", "24h")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    agents = {a["agent"]: a for a in data["agents"]}
    planner, researcher = agents["planner"], agents["researcher"]
    assert (planner["runs"], planner["failed"], planner["failure_rate"]) == (2, 1, 0.5)
    assert planner["p50_ms"] == pytest.approx(100, abs=0.5)  # nearest rank of (100, 300)
    assert planner["p95_ms"] == pytest.approx(300, abs=0.5)
    assert researcher["p50_ms"] == pytest.approx(1000, abs=0.5)
    assert researcher["p95_ms"] == pytest.approx(2000, abs=0.5)
    assert researcher["unpriced_tokens"] == 2200
    assert planner["input_tokens"] == 2000 and planner["output_tokens"] == 200
    totals = data["totals"]
    assert (totals["runs"], totals["failed"], totals["running"]) == (4, 2, 0)
    assert totals["failure_rate"] == 0.5
    assert totals["errors"] == 3 + 1  # failure occurrences: no propagated copies
    assert totals["cost_usd"] == pytest.approx(2 * _gpt4o_mini(1000, 100) + 0.5)
    categories = {(c["source"], c["category"]): c["errors"] for c in data["errors_by_category"]}
    assert categories[("tool", "dependency")] == 3


def test_stats_window_includes_older_runs_when_asked(cli: Invoke) -> None:
    data = json.loads(cli("stats", "--json", "--since", "30d").stdout)

    assert data["totals"]["runs"] == 5


def test_stats_over_an_empty_window_reports_zero_dollars_as_a_number(cli: Invoke) -> None:
    totals = json.loads(cli("stats", "--json", "--since", "2999-01-01").stdout)["totals"]

    assert (totals["runs"], totals["failure_rate"]) == (0, None)
    assert totals["cost_usd"] == 0.0 and isinstance(totals["cost_usd"], float)


def test_stats_table_reads_as_a_comparison(cli: Invoke) -> None:
    out = cli("stats").stdout

    assert "4 runs, 2 failed (50.0%)" in out
    assert "Per agent" in out and "planner" in out and "researcher" in out
    assert "50.0%" in out and "100ms" in out and "2.0s" in out
    assert "+2,200 unpriced tokens" in out


def test_cost_breaks_down_by_model_agent_and_day(cli: Invoke) -> None:
    data = json.loads(cli("cost", "--json", "--since", "7d").stdout)

    models = {m["model"]: m for m in data["by_model"]}
    assert set(models) == {"gpt-4o-mini", "acme-local-7b"}
    assert models["gpt-4o-mini"]["calls"] == 3
    assert models["gpt-4o-mini"]["cost_usd"] == pytest.approx(2 * _gpt4o_mini(1000, 100) + 0.5)
    assert models["acme-local-7b"]["cost_usd"] == 0
    assert models["acme-local-7b"]["unpriced_tokens"] == 2200
    agents = {a["agent"]: a for a in data["by_agent"]}
    assert agents["planner"]["cost_usd"] == pytest.approx(2 * _gpt4o_mini(1000, 100))
    assert agents["researcher"]["cost_usd"] == pytest.approx(0.5)
    assert sum(d["calls"] for d in data["by_day"]) == data["total"]["calls"] == 4
    assert data["total"]["unpriced_tokens"] == 2200


def test_cost_lists_unpriced_tokens_apart_and_shows_both_sides_of_a_mismatch(
    cli: Invoke, fleet: Fleet
) -> None:
    data = json.loads(cli("cost", "--json").stdout)

    assert data["unpriced"] == [
        {"model": "acme-local-7b", "calls": 1, "input_tokens": 2000, "output_tokens": 200}
    ]
    (mismatch,) = data["mismatches"]["by_model"]
    assert mismatch["model"] == "gpt-4o-mini"
    assert mismatch["steps"] == 1
    assert mismatch["reported_usd"] == pytest.approx(0.5)
    assert mismatch["computed_usd"] == pytest.approx(_gpt4o_mini(1000, 100))
    (example,) = data["mismatches"]["examples"]
    assert example["run_id"] == fleet.expected.runs["researcher_ok"]

    out = cli("cost").stdout
    assert "Unpriced (model not in litellm's price map)" in out
    assert "Reported vs computed cost disagree" in out
    assert "$0.5000" in out and f"${_gpt4o_mini(1000, 100):.6f}" in out


def test_cost_since_an_iso_time_in_the_future_is_empty(cli: Invoke) -> None:
    data = json.loads(cli("cost", "--json", "--since", "2999-01-01").stdout)

    assert data["total"]["calls"] == 0
    assert data["by_model"] == [] and data["unpriced"] == []
    assert "over 0 calls" in cli("cost", "--since", "2999-01-01T00:00:00Z").stdout


@pytest.mark.parametrize("fleet", ["postgresql"], indirect=True)
def test_postgresql_has_statistics_for_the_cost_groups(fleet: Fleet) -> None:
    """Without them the planner guesses one group per step and halves the speed of ``cost``."""
    with psycopg.connect(fleet.url.replace("+psycopg", "")) as conn:
        names = [r[0] for r in conn.execute("SELECT stxname FROM pg_statistic_ext")]

    assert "st_steps_cost_groups" in names


def test_stats_and_cost_show_what_failure_cost(cli: Invoke) -> None:
    stats = json.loads(cli("stats", "--json", "--since", "24h").stdout)
    failures = stats["failure_cost"]
    # the same failed runs as the totals, their spend rolled up by agent and by category
    assert failures["failed_runs"]["count"] == stats["totals"]["failed"] == 2
    for view in ("by_agent", "by_category"):
        assert sum(r["failed_runs"]["count"] for r in failures[view]) == 2
        assert sum(r["failed_runs"]["cost_usd"] for r in failures[view]) == pytest.approx(
            failures["failed_runs"]["cost_usd"]
        )
    assert {r["name"] for r in failures["by_category"]} <= {"undiagnosed", "dependency"}
    cost = json.loads(cli("cost", "--json", "--since", "24h").stdout)
    assert cost["failures"] == failures

    text = cli("cost", "--since", "24h").stdout
    assert "Spent on failure: 2 failed runs" in text
    assert "Cost of failure by category" in text and "Cost of failure by agent" in text
    assert "Spent on failure: 2 failed runs" in cli("stats").stdout
