"""``otel-diag monitor``: one frame with ``--once``, frames per refresh without a terminal."""

from __future__ import annotations

import json

import pytest

from otel_diag.projection.cost import lookup_price
from tests.cli.conftest import Fleet, Invoke


def test_monitor_once_renders_rates_costs_latest_errors_and_diagnoses(cli: Invoke) -> None:
    result = cli("monitor", "--once", "--window", "15m")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "otel-diag monitor" in out and "last 15m" in out
    assert "0.27" in out  # 4 runs / 15 minutes
    assert "50.0%" in out  # 2 of 4 finished runs failed
    assert "Cost per minute by model" in out
    assert "gpt-4o-mini" in out and "acme-local-7b" in out and "unpriced" in out
    assert "Latest errors" in out and "ValueError" in out and "ConnectionError" in out
    assert "No diagnoses yet." in out


def test_monitor_once_json_has_the_dashboard_figures(cli: Invoke, fleet: Fleet) -> None:
    data = json.loads(cli("monitor", "--once", "--json", "--window", "1h").stdout)

    assert (data["runs"], data["failed"], data["running"]) == (4, 2, 0)
    assert data["failure_rate"] == 0.5
    assert data["runs_per_minute"] == pytest.approx(4 / 60, abs=0.001)
    assert data["pending_diagnoses"] == 2
    price = lookup_price("gpt-4o-mini", "openai")
    assert price is not None
    computed = 1000 * price.input_per_token + 100 * price.output_per_token
    models = {m["model"]: m for m in data["models"]}
    assert models["gpt-4o-mini"]["cost_usd"] == pytest.approx(2 * computed + 0.5)
    assert models["gpt-4o-mini"]["cost_per_minute"] == pytest.approx((2 * computed + 0.5) / 60)
    assert models["acme-local-7b"]["unpriced_calls"] == 1
    assert sum(m["runs"] for m in data["per_minute"]) == 4
    assert len(data["latest_errors"]) == 4  # failures, not their propagated copies
    newest = data["latest_errors"][0]
    assert newest["run_id"] == fleet.expected.runs["researcher_failed"]
    assert data["latest_diagnoses"] == []


def test_monitor_without_a_terminal_prints_one_frame_per_refresh(cli: Invoke) -> None:
    result = cli("monitor", "--count", "2", "--interval", "0.2")

    assert result.exit_code == 0
    assert result.stdout.count("otel-diag monitor") == 2


def test_monitor_json_stream_prints_one_object_per_line(cli: Invoke) -> None:
    result = cli("monitor", "--json", "--count", "2", "--interval", "0.2")

    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all(json.loads(line)["runs"] >= 4 for line in lines)


def test_monitor_window_that_holds_nothing_shows_zeroes(cli: Invoke) -> None:
    # Every seeded run is at least ~2 minutes old.
    data = json.loads(cli("monitor", "--once", "--json", "--window", "10s").stdout)

    assert data["runs"] == 0 and data["failure_rate"] is None and data["models"] == []
