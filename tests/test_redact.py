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


# Formats an adversarial review found stored verbatim (issue 16), plus GCP, Twilio, Datadog
# and Shopify: (text as an app or library would write it, the secret inside it).
FORMATS: dict[str, tuple[str, str]] = {
    "stripe-secret": (
        "stripe said: invalid key sk_live_51HzQ8aKb3cD4eF5gH6iJ7kL8mN9oP0q",
        "sk_live_51HzQ8aKb3cD4eF5gH6iJ7kL8mN9oP0q",
    ),
    "stripe-restricted": (
        "charge failed with rk_live_51Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9",
        "rk_live_51Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9",
    ),
    "huggingface": (
        "401 for hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567 on model",
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    ),
    "npm": (
        "npm ERR! auth npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 expired",
        "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    ),
    "gitlab": ("clone with glpat-xY9zA8bC7dE6fG5hI4jK failed", "glpat-xY9zA8bC7dE6fG5hI4jK"),
    "sendgrid": (
        "mail: SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012 rejected",
        "SG.aBcDeFgHiJkLmNoPqRsTuV",
    ),
    "github-fine-grained": (
        "push denied for github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd",
        "github_pat_11ABCDEFG0123456789",
    ),
    "slack-webhook": (
        "POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX returned 404",
        "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    ),
    "s3-presigned": (
        "GET https://bkt.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=9f2c1b7e0a3d4c5b6a7980f1e2d3c4b5a69788f0e1d2c3b4a5968778695a4b3c failed",
        "9f2c1b7e0a3d4c5b6a7980f1e2d3c4b5a69788f0e1d2c3b4a5968778695a4b3c",
    ),
    "azure-account-key": (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg0MjQy+/ab==;EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg0MjQy",
    ),
    "aws-secret-unlabeled": (
        "creds AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in env",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    "gcp-service-account": (
        '{"type": "service_account", "private_key_id": "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n", "client_email": "x@p.iam.gserviceaccount.com"}',
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    ),
    "twilio-api-key": (
        "twilio SKa1b2c3d4e5f60718293a4b5c6d7e8f90 denied",
        "SKa1b2c3d4e5f60718293a4b5c6d7e8f90",
    ),
    "twilio-sid-token": (
        "https://AC0123456789abcdef0123456789abcdef:f0e1d2c3b4a5968778695a4b3c2d1e0f@api.twilio.com",
        "f0e1d2c3b4a5968778695a4b3c2d1e0f",
    ),
    "datadog-header": (
        "DD-API-KEY: 9a8b7c6d5e4f30211203f4e5d6c7b8a9 rejected",
        "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
    ),
    "datadog-app-key": (
        "DD_APP_KEY=4f3e2d1c0b9a8f7e6d5c4b3a29181706f5e4d3c2",
        "4f3e2d1c0b9a8f7e6d5c4b3a29181706f5e4d3c2",
    ),
    "shopify": (
        "shopify said shpat_0123456789abcdef0123456789abcdef is invalid",
        "shpat_0123456789abcdef0123456789abcdef",
    ),
    "random-token-near-key-word": (
        "the key we used was Xq7Lm2Pz9Rt4Vb8Nw3Kc6Hd1Jf5Gs0Ay and it expired",
        "Xq7Lm2Pz9Rt4Vb8Nw3Kc6Hd1Jf5Gs0Ay",
    ),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_provider_token_formats_and_signed_urls_are_redacted(name: str) -> None:
    text, secret = FORMATS[name]
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_a_random_token_is_redacted_only_near_a_key_like_word_and_only_if_random() -> None:
    """The entropy rule: long, mixed, high-entropy tokens after key/secret/token/...; ids stay."""
    assert REDACTED in redact("secret is 9fQ2xLm7Rt4Vb8Nw3Kc6Hd1Jf5Gs0AyZ")
    unchanged = [
        "run key 123e4567-e89b-12d3-a456-426614174000 missing",  # a UUID (hex)
        "token limit reached for model gpt-4o-mini-2024-07-18 at step planner",
        "key error: 'customer_identifier_field_name_mapping' not found",  # a long word
        "trace 9fQ2xLm7Rt4Vb8Nw3Kc6Hd1Jf5Gs0AyZ failed",  # random, but no key-like word
    ]
    for text in unchanged:
        assert redact(text) == text


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
