"""Bad URLs, unreachable databases and bad tenants: one line on stderr, exit status 1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli

COMMANDS = [
    ["runs"],
    ["runs", "--json"],
    ["errors", "abcd1234"],
    ["monitor", "--once"],
    ["stats"],
    ["cost", "--since", "7d"],
    ["export", "--output", "{tmp}/out.csv"],
]
BAD_DATABASES = {
    "unreachable": "postgresql+psycopg://postgres@127.0.0.1:1/x",
    "not_a_url": "not a url at all",
    "unsupported": "mysql://user@localhost/db",
    "unopenable_sqlite": "sqlite:////proc/no/such/dir/otel.db",
    "not_a_database": "sqlite:///{tmp}/not-a-database.db",
}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
@pytest.mark.parametrize("url", BAD_DATABASES.values(), ids=BAD_DATABASES.keys())
def test_every_command_reports_a_bad_database_in_one_line(
    command: list[str], url: str, tmp_path: Path
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    (tmp_path / "not-a-database.db").write_text("a text file, not an SQLite database\n" * 100)

    result = run_cli(*args, "--database-url", url.replace("{tmp}", str(tmp_path)))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: "-".join(c[:2]))
def test_a_bad_tenant_is_a_one_line_error(command: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]

    result = run_cli(*args, "--tenant", "../etc")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid tenant id")
    assert result.stderr.count("\n") == 1


def test_commands_read_another_tenant_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'otel.db'}"

    result = run_cli("runs", "--json", "--database-url", url, "--tenant", "acme")

    assert result.exit_code == 0
    assert '"tenant": "acme"' in result.stdout
    assert (tmp_path / "otel.acme.db").is_file()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_a_database_that_fails_mid_command_is_a_one_line_error(
    command: list[str], tmp_path: Path
) -> None:
    """The schema is there when the command opens the database (its version says so), but a
    table is gone when the command reads it: a restore of a partial backup, say."""
    url = f"sqlite:///{tmp_path / 'otel.db'}"
    assert run_cli("runs", "--database-url", url).exit_code == 0  # created and migrated
    with sqlite3.connect(tmp_path / "otel.db") as conn:
        conn.execute("DROP TABLE error_logs")
        conn.execute("DROP TABLE runs")
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]

    result = run_cli(*args, "--database-url", url)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: database error: no such table: ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob("*.part"))
