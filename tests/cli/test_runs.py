"""``otel-diag runs``: the latest runs as a table or JSON, filtered, with trace links."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Fleet, Invoke


def test_runs_lists_newest_first_with_short_ids_status_and_cost(cli: Invoke, fleet: Fleet) -> None:
    result = cli("runs")

    assert result.exit_code == 0, result.output
    out = result.stdout
    runs = fleet.expected.runs
    positions = [
        out.index(runs[k][:8])
        for k in (
            "researcher_ok",
            "researcher_failed",
            "planner_failed",
            "planner_ok",
            "planner_old",
        )
    ]
    assert positions == sorted(positions)
    assert out.count("failed") >= 2
    assert "researcher" in out and "planner" in out
    assert "$0.5000" in out  # the reported cost of researcher_ok


def test_runs_json_has_every_run_with_duration_and_trace_url(cli: Invoke, fleet: Fleet) -> None:
    result = cli("runs", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tenant"] == "default"
    assert data["count"] == 5
    by_id = {r["id"]: r for r in data["runs"]}
    failed = by_id[fleet.expected.runs["planner_failed"]]
    assert failed["status"] == "failed"
    assert failed["error_count"] == 3  # 3 tool attempts; agent and workflow only re-recorded
    assert failed["agent_name"] == "planner"
    assert failed["duration_ms"] == pytest.approx(300, abs=0.01)
    assert failed["trace_id"] == fleet.expected.traces["planner_failed"]
    assert failed["trace_url"] is None
    assert failed["started_at"].endswith("+00:00")


def test_runs_filters_by_status_agent_and_since(cli: Invoke, fleet: Fleet) -> None:
    failed = json.loads(cli("runs", "--json", "--status", "failed").stdout)["runs"]
    assert {r["id"] for r in failed} == {
        fleet.expected.runs["planner_failed"],
        fleet.expected.runs["researcher_failed"],
    }
    planner = json.loads(cli("runs", "--json", "--agent", "planner").stdout)["runs"]
    assert {r["agent_name"] for r in planner} == {"planner"}
    assert len(planner) == 3
    recent = json.loads(cli("runs", "--json", "--since", "24h").stdout)["runs"]
    assert fleet.expected.runs["planner_old"] not in {r["id"] for r in recent}
    assert len(recent) == 4
    limited = json.loads(cli("runs", "--json", "--limit", "2").stdout)["runs"]
    assert len(limited) == 2


def test_runs_shows_trace_links_when_a_template_is_set(
    cli: Invoke, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_DIAG_TRACE_URL_TEMPLATE", "http://jaeger:16686/trace/{trace_id}")
    trace_id = fleet.expected.traces["planner_failed"]

    table = cli("runs")
    data = json.loads(cli("runs", "--json").stdout)

    assert f"http://jaeger:16686/trace/{trace_id}" in table.stdout
    urls = {r["id"]: r["trace_url"] for r in data["runs"]}
    assert urls[fleet.expected.runs["planner_failed"]] == f"http://jaeger:16686/trace/{trace_id}"


def test_runs_rejects_a_bad_since_with_a_usage_error(cli: Invoke) -> None:
    result = cli("runs", "--since", "yesterday-ish")

    assert result.exit_code == 2
    assert "not a time" in result.stderr
