"""``otel-diag --version`` names the litellm and openai versions diagnosis runs on."""

from __future__ import annotations

from importlib import metadata

from click.testing import CliRunner

from otel_diag.cli import main
from otel_diag.version import __version__


def test_version_prints_otel_diag_litellm_and_openai() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    expected = (
        f"otel-diag {__version__} (litellm {metadata.version('litellm')}, "
        f"openai {metadata.version('openai')})"
    )
    assert result.output.strip() == expected
    assert not metadata.version("litellm").startswith("1.107.")  # the pulled release
