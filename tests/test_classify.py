"""Error classification and fingerprints."""

from __future__ import annotations

import pytest

from otel_diag.classify import classify, fingerprint


@pytest.mark.parametrize(
    ("error_type", "message", "kind", "expected"),
    [
        ("litellm.exceptions.RateLimitError", "429 slow down", "llm", ("llm", "rate_limit")),
        (
            "openai.BadRequestError",
            "This model's maximum context length is 8192 tokens",
            "llm",
            ("llm", "context_length"),
        ),
        (
            "litellm.exceptions.ContextWindowExceededError",
            "too long",
            "llm",
            ("llm", "context_length"),
        ),
        ("litellm.exceptions.Timeout", "Request timed out", "llm", ("llm", "timeout")),
        ("litellm.exceptions.AuthenticationError", "Incorrect API key", "llm", ("llm", "auth")),
        (
            "litellm.exceptions.BadRequestError",
            "unknown parameter 'foo'",
            "llm",
            ("llm", "invalid_request"),
        ),
        (
            "litellm.exceptions.APIConnectionError",
            "Connection refused",
            "llm",
            ("llm", "dependency"),
        ),
        ("litellm.exceptions.ServiceUnavailableError", "503", "llm", ("llm", "dependency")),
        ("TimeoutError", "", "tool", ("tool", "timeout")),
        ("ConnectionError", "flight API timed out after 3 retries", "tool", ("tool", "dependency")),
        (
            "pydantic_core._pydantic_core.ValidationError",
            "1 validation error for Args",
            "tool",
            ("tool", "validation"),
        ),
        (
            "json.decoder.JSONDecodeError",
            "Expecting value: line 1 column 1",
            "agent",
            ("activity", "output_parse"),
        ),
        ("sqlalchemy.exc.OperationalError", "database is locked", None, ("storage", "storage")),
        ("PermissionError", "Permission denied: /etc/shadow", "tool", ("tool", "auth")),
        ("KeyError", "'city'", "tool", ("tool", "tool_error")),
        ("ZeroDivisionError", "division by zero", None, ("api", "internal")),
    ],
)
def test_errors_are_classified_by_type_first_then_message(error_type, message, kind, expected):
    assert classify(error_type, message, kind) == expected


def test_explicit_source_and_category_on_the_span_win():
    assert classify("ValueError", "rate limit", "tool", source="validation", category="custom") == (
        "validation",
        "custom",
    )


def test_same_error_shape_gives_the_same_fingerprint_whatever_the_ids_and_numbers():
    a = fingerprint(
        "tool",
        "dependency",
        "ConnectionError",
        "search",
        "GET /v1/items/123 failed after 3.2s (req 9f1c2a3b4c5d6e7f)",
    )
    b = fingerprint(
        "tool",
        "dependency",
        "ConnectionError",
        "search",
        "GET /v1/items/987 failed after 10.0s (req 0a1b2c3d4e5f6a7b)",
    )
    c = fingerprint(
        "tool",
        "dependency",
        "ConnectionError",
        "lookup",
        "GET /v1/items/123 failed after 3.2s (req 9f1c2a3b4c5d6e7f)",
    )
    assert a == b
    assert a != c
