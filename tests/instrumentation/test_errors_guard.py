"""The error emit API never raises into the application."""

from __future__ import annotations

import pytest

from otel_diag.instrumentation import errors, tracing


def test_a_bad_argument_to_the_emit_api_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "RAISE_INTERNAL_ERRORS", False)
    info = errors.log_error("not-a-source", ValueError("x"))
    assert info.error_type == "ValueError"
    assert info.category == "internal"
