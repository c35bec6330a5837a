"""``otel-diag init``: config written, database created or migrated, next steps printed."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from otel_diag.config import load_settings
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.migrate import current_revision, head_revision
from tests.cli.conftest import run_cli

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def home() -> Path:
    return Path(os.environ["OTEL_DIAG_HOME"])


def configured_url() -> str:
    return tomllib.loads((home() / "config.toml").read_text())["otel_diag"]["database_url"]


def schema_revision(url: str) -> str | None:
    manager = TenantDBManager(url, load_settings(database_url=url))
    try:
        return current_revision(manager.get_engine())
    finally:
        manager.dispose()


def test_init_on_a_fresh_home_creates_the_embedded_database_and_prints_next_steps() -> None:
    result = run_cli("init")

    assert result.exit_code == 0, result.output
    config = home() / "config.toml"
    assert config.is_file()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert configured_url() == f"sqlite:///{home() / 'otel_diag.db'}"
    assert (home() / "otel_diag.db").is_file()
    assert schema_revision(configured_url()) == head_revision()
    out = result.stdout
    assert "Wrote" in out and "Database ready" in out
    assert "opentelemetry-instrument --traces_exporter otel_diag" in out
    assert "otel-diag serve" in out
    assert load_settings().database_url == configured_url()


@pytest.mark.parametrize("flag", ["--connection", "--database-url"])
def test_init_with_a_connection_migrates_that_database(db_url: str, flag: str) -> None:
    result = run_cli("init", flag, db_url, "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backend"] == ("postgresql" if db_url.startswith("postgresql") else "sqlite")
    assert data["schema_revision"] == head_revision()
    assert data["overwritten"] is False
    assert configured_url() == db_url
    assert schema_revision(db_url) == head_revision()


def test_init_accepts_plain_postgres_urls_and_picks_the_psycopg_driver(
    make_pg_database,
) -> None:
    url = make_pg_database()
    plain = url.replace("postgresql+psycopg://", "postgres://", 1)

    result = run_cli("init", "--backend", "postgresql", "--connection", plain)

    assert result.exit_code == 0, result.output
    assert configured_url() == url


def test_init_on_an_existing_home_refuses_without_force_and_overwrites_with_it(
    tmp_path: Path,
) -> None:
    assert run_cli("init").exit_code == 0
    before = (home() / "config.toml").read_text()
    other = f"sqlite:///{tmp_path / 'other.db'}"

    refused = run_cli("init", "--connection", other)

    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    assert "--force" in refused.stderr
    assert (home() / "config.toml").read_text() == before

    forced = run_cli("init", "--connection", other, "--force")

    assert forced.exit_code == 0, forced.output
    assert "Overwrote" in forced.stdout
    assert configured_url() == other


def test_init_force_repairs_an_unreadable_config(tmp_path: Path) -> None:
    home().mkdir(parents=True, exist_ok=True)
    (home() / "config.toml").write_text("this is [not toml")

    refused = run_cli("init")
    forced = run_cli("init", "--force")

    assert refused.exit_code == 1 and "cannot read" in refused.stderr
    assert forced.exit_code == 0, forced.output
    assert configured_url().startswith("sqlite:///")


def test_init_then_commands_use_the_configured_database_without_a_notice(db_url: str) -> None:
    assert run_cli("init", "--connection", db_url).exit_code == 0

    result = run_cli("runs", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 0
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "postgresql"], "needs --connection"),
        (["--backend", "sqlite", "--connection", "postgresql://u@h/db"], "does not match"),
    ],
)
def test_init_rejects_contradictory_flags(args: list[str], message: str) -> None:
    result = run_cli("init", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert not (home() / "config.toml").exists()


@pytest.mark.parametrize(
    "url", [UNREACHABLE, "mysql://u@localhost/db", "sqlite:////proc/no/such/dir/x.db"]
)
def test_init_with_a_bad_or_unreachable_database_writes_nothing(url: str) -> None:
    result = run_cli("init", "--connection", url)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (home() / "config.toml").exists()


def test_init_hides_the_database_password_in_its_output(make_pg_database) -> None:
    url = make_url(make_pg_database())
    assert url.password, "the test server must log in with a password"

    result = run_cli("init", "--connection", url.render_as_string(hide_password=False))

    assert result.exit_code == 0, result.output
    assert str(url.password) not in result.output
    assert f"{url.username}:***@" in result.stdout
