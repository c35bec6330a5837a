"""Secrets never reach the store or an LLM prompt; text is always storable."""

from __future__ import annotations

import pytest

from otel_diag.redact import REDACTED, clean_text, redact, redact_mapping, safe_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "openai key sk-proj-Zx81mQ2vLk39sPq7Rt5wYb0cNd4e rejected",
            "sk-proj-Zx81mQ2vLk39sPq7Rt5wYb0cNd4e",
        ),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstu", "sk-ant-api03-abcdefghijklmnopqrstu"),
        ("Authorization: Bearer abc.def-ghi_jkl~mno", "abc.def-ghi_jkl~mno"),
        ("connect postgresql://app:s3cr3t-pw@db:5432/x failed", "s3cr3t-pw"),
        ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ('{"api_key": "abcd-1234-efgh"}', "abcd-1234-efgh"),
        ("password='hunter2!'", "hunter2!"),
        ("github ghp_0123456789abcdefghijABCDEFGHIJ0123 leaked", "ghp_0123456789abcdefghij"),
        ("slack xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZw", "eyJhbGciOiJIUzI1NiJ9"),
        ("redis://:hunter2pass@redis:6379/0", "hunter2pass"),
        ("postgresql://user:p@ss:w0rd@db/app", "ss:w0rd"),
        ('{"password": "correct horse battery staple"}', "battery staple"),
        ("Cookie: session=abc123def456", "abc123def456"),
        ("passphrase=opensesame1", "opensesame1"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEow",
        ),
    ],
)
def test_known_secret_shapes_are_redacted(text, secret):
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_redaction_keeps_the_harmless_context_around_a_secret():
    assert redact("password=hunter2 for user bob") == f"password={REDACTED} for user bob"
    assert redact("https://bob:pw123@host/x") == f"https://bob:{REDACTED}@host/x"


def test_token_counts_and_ordinary_words_are_not_mistaken_for_secrets():
    text = "max_tokens=4096 exceeded; prompt_tokens: 9000, the author wrote a tokenizer"
    assert redact(text) == text


def test_secret_named_keys_are_blanked_in_mappings_and_values_are_redacted():
    out = redact_mapping(
        {
            "db.password": "x",
            "http.request.header.authorization": "Bearer abcdefghijklmnop",
            "note": "key sk-abcdefghijklmnopqrstuvwx",
            "gen_ai.usage.input_tokens": 12,
        }
    )
    assert out["db.password"] == REDACTED
    assert out["http.request.header.authorization"] == REDACTED
    assert "sk-abcdefghijklmnopqrstuvwx" not in out["note"]
    assert out["gen_ai.usage.input_tokens"] == 12


def test_mappings_are_bounded_in_items_and_value_length():
    out = redact_mapping({f"k{i}": "v" * 5000 for i in range(100)}, value_limit=100, max_items=10)
    assert len(out) == 11 and out["_truncated_items"] == 90
    assert all(len(v) < 200 for k, v in out.items() if k != "_truncated_items")


def test_clean_text_makes_nul_surrogates_and_bytes_storable():
    assert "\x00" not in clean_text("a\x00b")
    clean_text("bad \udcff").encode("utf-8")  # would raise if a surrogate survived
    assert clean_text(b"\xff\xfeok").endswith("ok")


def test_oversize_text_is_truncated_with_a_marker_inside_the_limit():
    out = safe_text("y" * 50_000, 1000)
    assert len(out) == 1000  # fits a VARCHAR(1000) column, marker included
    assert out.startswith("y" * 900)
    assert out.endswith("[truncated 49000 chars]")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("payload", ["x" * 1_000_000, "token" * 200_000, "a:b@" * 250_000])
def test_adversarial_megabyte_inputs_are_handled_in_linear_time(payload):
    """A guard against catastrophic backtracking (these took minutes with unbounded patterns)."""
    assert len(safe_text(payload, 16384)) < 16500
