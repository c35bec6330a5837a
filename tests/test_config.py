"""Configuration: the server refuses a bad value; code inside the user's app never stops on one."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from otel_diag.config import (
    InstrumentationSettings,
    load_instrumentation_settings,
    load_settings,
)


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"OTEL_DIAG_HOME": str(tmp_path), **values}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_server_refuses_a_bad_value_and_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid value for llm_timeout: 'abc'"):
        load_settings(_env(tmp_path, OTEL_DIAG_LLM_TIMEOUT="abc"))
    with pytest.raises(ValueError, match="OTEL_DIAG_DIAGNOSIS must be auto, rules or off"):
        load_settings(_env(tmp_path, OTEL_DIAG_DIAGNOSIS="sometimes"))


def test_an_explicit_value_wins_over_a_bad_environment_value(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path, OTEL_DIAG_LLM_TIMEOUT="abc"), llm_timeout=3)
    assert settings.llm_timeout == 3.0


def test_lenient_settings_log_a_bad_value_once_and_use_its_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = f"abc-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, OTEL_DIAG_LLM_TIMEOUT=bad, OTEL_DIAG_DB_TIMEOUT="2.5")
    with caplog.at_level(logging.WARNING, logger="otel_diag"):
        first = load_settings(env, lenient=True)
        second = load_settings(env, lenient=True)
    assert first.llm_timeout == second.llm_timeout == 30.0  # the default
    assert first.db_timeout == 2.5  # good values still apply
    (warning,) = _warnings(caplog)
    assert "OTEL_DIAG_LLM_TIMEOUT" in warning and bad in warning and "default" in warning


def test_lenient_settings_survive_an_unreadable_config_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "config.toml").write_text(f"[otel_diag\nbroken = {uuid.uuid4().hex!r}")
    with pytest.raises(ValueError, match="cannot read"):
        load_settings(_env(tmp_path))
    with caplog.at_level(logging.WARNING, logger="otel_diag"):
        settings = load_settings(_env(tmp_path, OTEL_DIAG_TENANT="acme"), lenient=True)
    assert settings.tenant == "acme"
    assert len(_warnings(caplog)) == 1


def test_instrumentation_settings_never_read_the_servers_variables(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = _env(
        tmp_path,
        OTEL_DIAG_LLM_TIMEOUT="abc",
        OTEL_DIAG_DIAGNOSIS="sometimes",
        OTEL_DIAG_MAX_INFLIGHT="many",
        OTEL_DIAG_TRUST_BAGGAGE_TENANT="false",
    )
    with caplog.at_level(logging.WARNING, logger="otel_diag"):
        settings = load_instrumentation_settings(env)
    assert settings == InstrumentationSettings(trust_baggage_tenant=False)
    assert _warnings(caplog) == []


def test_a_bad_app_side_value_is_logged_once_and_its_default_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = f"maybe-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, OTEL_DIAG_TRUST_BAGGAGE_TENANT=bad)
    with caplog.at_level(logging.WARNING, logger="otel_diag"):
        settings = [load_instrumentation_settings(env) for _ in range(3)]
    assert settings == [InstrumentationSettings()] * 3  # trusting baggage is the default
    (warning,) = _warnings(caplog)
    assert "OTEL_DIAG_TRUST_BAGGAGE_TENANT" in warning and bad in warning


def test_instrumentation_settings_come_from_the_config_file_below_the_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_text("[otel_diag]\ntrust_baggage_tenant = false\n")
    assert load_instrumentation_settings(_env(tmp_path)).trust_baggage_tenant is False
    env = _env(tmp_path, OTEL_DIAG_TRUST_BAGGAGE_TENANT="true")
    assert load_instrumentation_settings(env).trust_baggage_tenant is True


def test_an_iso_time_past_the_representable_range_in_utc_is_a_clear_error() -> None:
    import pytest

    from otel_diag.timewindow import parse_since

    for value in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValueError, match="out of range"):
            parse_since(value)
