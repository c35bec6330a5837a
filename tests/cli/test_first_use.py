"""Before ``init``: any command works on the embedded SQLite default and says so once."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.conftest import run_cli


def test_the_first_command_without_init_uses_sqlite_and_says_so_once() -> None:
    first = run_cli("runs", "--json")
    second = run_cli("stats")

    assert first.exit_code == 0 and second.exit_code == 0
    assert "no configuration yet" in first.stderr
    assert "otel-diag init" in first.stderr
    assert json.loads(first.stdout)["count"] == 0  # stdout stays clean JSON
    assert second.stderr == ""
    assert (Path(os.environ["OTEL_DIAG_HOME"]) / "otel_diag.db").is_file()


def test_no_notice_when_a_database_is_given(tmp_path: Path) -> None:
    result = run_cli("runs", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")

    assert result.exit_code == 0
    assert result.stderr == ""
