"""``otel-diag errors RUN``: one run's errors, found by full id, prefix or trace id."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Fleet, Invoke
from tests.cli.seed import SECRET


@pytest.mark.parametrize("form", ["uuid", "prefix", "trace_id", "hex_without_dashes"])
def test_errors_finds_the_run_from_any_id_form(cli: Invoke, fleet: Fleet, form: str) -> None:
    run_id = fleet.expected.runs["planner_failed"]
    ref = {
        "uuid": run_id,
        "prefix": run_id[:8],
        "trace_id": fleet.expected.traces["planner_failed"],
        "hex_without_dashes": run_id.replace("-", ""),
    }[form]

    result = cli("errors", ref, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["id"] == run_id


def test_errors_table_shows_each_failure_in_order_with_shapes_and_no_secret(
    cli: Invoke, fleet: Fleet
) -> None:
    result = cli("errors", fleet.expected.runs["planner_failed"][:8])

    assert result.exit_code == 0, result.output
    out = result.stdout
    # Three attempts of one tool call; the agent and workflow spans only re-recorded it.
    assert "1 failure, 3 attempts" in out
    assert "Error shapes" in out
    assert out.count("ConnectionError") >= 3
    assert "planner > invoke_workflow trip" in out
    assert "tool/dependency" in out
    assert "search_flights" in out
    assert SECRET not in out
    assert "[REDACTED]" in out
    assert "Diagnosis: pending" in out


def test_errors_json_has_run_summary_errors_and_diagnosis(cli: Invoke, fleet: Fleet) -> None:
    data = json.loads(cli("errors", fleet.expected.runs["researcher_failed"], "--json").stdout)

    assert set(data) == {"run", "summary", "errors", "diagnosis"}
    assert data["run"]["status"] == "failed"
    assert data["run"]["agent_name"] == "researcher"
    assert data["diagnosis"] is None
    assert data["summary"]["total"] == len(data["errors"]) == 1
    assert (data["summary"]["failures"], data["summary"]["attempts"]) == (1, 1)
    tool_error = data["errors"][0]
    assert tool_error["error_type"] == "ValueError"
    assert tool_error["step_name"] == "search_flights"
    assert tool_error["trace_id"] == fleet.expected.traces["researcher_failed"]
    assert "trace_url" in tool_error
    assert [e["created_at"] for e in data["errors"]] == sorted(
        e["created_at"] for e in data["errors"]
    )


def test_errors_of_a_run_without_errors_says_so(cli: Invoke, fleet: Fleet) -> None:
    result = cli("errors", fleet.expected.runs["planner_ok"])

    assert result.exit_code == 0
    assert "No errors recorded for this run." in result.stdout


def test_errors_with_stack_shows_the_compacted_stack(cli: Invoke, fleet: Fleet) -> None:
    result = cli("errors", fleet.expected.runs["planner_failed"], "--stack")

    assert result.exit_code == 0
    assert "ConnectionError: flight API unreachable" in result.stdout


@pytest.mark.parametrize("ref", ["00000000-0000-4000-8000-000000000000", "ffffeeee", "nope"])
def test_errors_of_an_unknown_run_is_a_one_line_error(cli: Invoke, ref: str) -> None:
    result = cli("errors", ref)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: no run matches")


def test_errors_groups_lists_each_shape_across_runs_busiest_first(
    cli: Invoke, fleet: Fleet
) -> None:
    data = json.loads(cli("errors", "--groups", "--since", "1h", "--json").stdout)

    groups = [(g["error_type"], g["occurrences"], g["runs_affected"]) for g in data["groups"]]
    assert groups == [("ConnectionError", 3, 1), ("ValueError", 1, 1)]
    assert data["groups"][0]["latest_run_id"] == fleet.expected.runs["planner_failed"]
    table = cli("errors", "--groups", "--agent", "researcher").stdout
    assert "ValueError" in table and "ConnectionError" not in table
    assert SECRET not in cli("errors", "--groups").stdout


def test_errors_without_a_run_or_groups_says_what_to_give(cli: Invoke) -> None:
    result = cli("errors")

    assert result.exit_code == 2
    assert "give a RUN, or --groups" in result.output
