"""Fixtures of the end-to-end tests: the peers' binaries, process clean-up, figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import peer_binary


@pytest.fixture(scope="session")
def jaeger_bin() -> Path:
    return peer_binary("jaeger")


@pytest.fixture(scope="session")
def otelcol_bin() -> Path:
    return peer_binary("otelcol")


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """What a test started (anything with a ``.proc``); stopped last-first when it ends."""
    running: list[Any] = []
    yield running
    for item in reversed(running):
        item.proc.stop()


@pytest.fixture
def figures(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a measured figure so that `make e2e` shows it (pytest captures the rest)."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n  [e2e] {line}", flush=True)

    return say
