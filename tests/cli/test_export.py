"""``otel-diag export``: files that parse and match the stored rows, in every format."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from otel_diag.config import load_settings
from otel_diag.rows import ErrorRow, Step
from otel_diag.store import open_storage
from tests.cli.conftest import Fleet, Invoke


def stored_errors(fleet: Fleet) -> dict[str, ErrorRow]:
    """Every stored error of the fleet, read through the storage port, by id."""
    storage = open_storage(load_settings(database_url=fleet.url))
    try:
        store = storage.tenant()
        return {str(err.id): err for run in store.runs(limit=100) for err in store.errors(run.id)}
    finally:
        storage.dispose()


def stored_steps(fleet: Fleet, run_id: str) -> list[Step]:
    storage = open_storage(load_settings(database_url=fleet.url))
    try:
        return storage.tenant().steps(uuid.UUID(run_id))
    finally:
        storage.dispose()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_export_of_errors_matches_the_stored_rows(
    cli: Invoke, fleet: Fleet, tmp_path: Path
) -> None:
    out = tmp_path / "errors.csv"

    result = cli("export", "--format", "csv", "--output", str(out))

    assert result.exit_code == 0, result.output
    assert "exported 4 errors rows" in result.stderr  # 3 attempts + 1 failure, no copies
    rows = read_csv(out)
    stored = stored_errors(fleet)
    assert len(rows) == len(stored) == 4
    for row in rows:
        want = stored[row["id"]]
        assert row["run_id"] == str(want.run_id)
        assert row["error_type"] == want.error_type
        assert row["error_message"] == want.error_message
        assert row["stack_trace"] == (want.stack_trace or "")
        assert json.loads(row["context"]) == want.context
        assert row["created_at"].endswith("+00:00")
        assert datetime.fromisoformat(row["created_at"]) == want.created_at
        assert int(row["attempt"]) == want.attempt
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_exports_parse_and_match_the_stored_rows(
    cli: Invoke, fleet: Fleet, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"errors.{fmt}"

    result = cli("export", "--output", str(out))  # format from the suffix

    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    items = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    stored = stored_errors(fleet)
    assert len(items) == len(stored)
    for item in items:
        want = stored[item["id"]]
        assert item["context"] == want.context
        assert item["fingerprint"] == want.fingerprint
        assert item["cost_usd"] == want.cost_usd
        assert item["input_tokens"] == want.input_tokens


def test_export_of_runs_and_steps_with_filters(cli: Invoke, fleet: Fleet, tmp_path: Path) -> None:
    runs_file = tmp_path / "runs.csv"
    assert (
        cli("export", "--table", "runs", "--status", "failed", "-o", str(runs_file)).exit_code == 0
    )
    failed = read_csv(runs_file)
    assert {r["id"] for r in failed} == {
        fleet.expected.runs["planner_failed"],
        fleet.expected.runs["researcher_failed"],
    }

    steps_file = tmp_path / "steps.jsonl"
    run_id = fleet.expected.runs["researcher_ok"]
    assert (
        cli("export", "--table", "steps", "--run", run_id[:8], "-o", str(steps_file)).exit_code == 0
    )
    steps = [json.loads(line) for line in steps_file.read_text().splitlines()]
    want = stored_steps(fleet, run_id)
    assert sorted(s["id"] for s in steps) == sorted(str(s.id) for s in want)
    llm = next(s for s in steps if s["kind"] == "llm")
    assert llm["cost_reported_usd"] == 0.5 and llm["cost_source"] == "reported"

    agent_file = tmp_path / "planner.csv"
    cli("export", "--agent", "planner", "--since", "24h", "-o", str(agent_file))
    assert {r["run_id"] for r in read_csv(agent_file)} == {fleet.expected.runs["planner_failed"]}

    limited = tmp_path / "limited.csv"
    cli("export", "--limit", "3", "-o", str(limited))
    assert len(read_csv(limited)) == 3


def test_export_adds_trace_urls_when_a_template_is_set(
    cli: Invoke, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_DIAG_TRACE_URL_TEMPLATE", "http://tempo/trace/{trace_id}")
    out = tmp_path / "errors.csv"

    cli("export", "-o", str(out))

    rows = read_csv(out)
    assert rows
    assert [r["trace_url"] for r in rows] == [f"http://tempo/trace/{r['trace_id']}" for r in rows]


def test_export_to_stdout_and_json_summary(cli: Invoke, tmp_path: Path) -> None:
    piped = cli("export", "--format", "jsonl", "-o", "-", "--limit", "2")
    assert len(piped.stdout.strip().splitlines()) == 2
    piped_csv = cli("export", "--format", "csv", "-o", "-", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(piped_csv.stdout)))
    assert len(rows) == 2 and rows[0]["error_type"]

    summary = json.loads(cli("export", "-o", str(tmp_path / "e.csv"), "--json").stdout)
    assert summary["rows"] == 4 and summary["format"] == "csv" and summary["table"] == "errors"


def test_export_with_a_progress_bar_writes_the_same_file(cli: Invoke, tmp_path: Path) -> None:
    plain, bar = tmp_path / "plain.csv", tmp_path / "bar.csv"

    cli("export", "--no-progress", "-o", str(plain))
    cli("export", "--progress", "-o", str(bar))

    assert plain.read_text() == bar.read_text()


def test_export_into_a_missing_directory_is_a_one_line_error(cli: Invoke, tmp_path: Path) -> None:
    result = cli("export", "-o", str(tmp_path / "nope" / "e.csv"))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write") and result.stderr.count("\n") == 1
    assert not list(tmp_path.glob("**/*.part"))


def test_csv_and_jsonl_exports_carry_the_same_values(cli: Invoke, tmp_path: Path) -> None:
    """On PostgreSQL the CSV comes from COPY and JSONL from a cursor: same values."""
    for table in ("errors", "runs", "steps"):
        csv_file, jsonl_file = tmp_path / f"{table}.csv", tmp_path / f"{table}.jsonl"
        cli("export", "--table", table, "-o", str(csv_file))
        cli("export", "--table", table, "-o", str(jsonl_file))

        from_csv = {r["id"]: r for r in read_csv(csv_file)}
        from_jsonl = [json.loads(line) for line in jsonl_file.read_text().splitlines()]
        assert len(from_csv) == len(from_jsonl) > 0
        for item in from_jsonl:
            row = from_csv[item["id"]]
            assert list(row) == list(item)
            for key, value in item.items():
                if isinstance(value, dict):
                    assert json.loads(row[key]) == value
                elif isinstance(value, float):
                    assert float(row[key]) == value
                else:
                    assert row[key] == ("" if value is None else str(value)), key


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_destination_that_fills_up_is_a_one_line_error_not_a_database_one(
    fleet: Fleet, fmt: str
) -> None:
    """On PostgreSQL the CSV is the database's own (COPY): its bytes fail to land the same way."""
    cli = Path(sys.executable).with_name("otel-diag")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [str(cli), "export", "-o", "-", "--format", fmt, "--database-url", fleet.url],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write -: [Errno 28] No space left on device")
    assert result.stderr.count("\n") == 1
