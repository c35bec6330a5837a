"""The real peers the tests run against: Jaeger v2, an OpenTelemetry Collector, FerretDB.

Each is a pinned Go module under ``tests/peers/<name>/``; ``tests/peers/build.sh`` builds it
once into a cache outside the work tree (``$OTEL_DIAG_PEERS_CACHE``, default
``~/.cache/otel-diag/peers``) and prints the binary's path. :func:`peer_binary` is how tests
get that path: a peer that cannot be built skips the test locally (with build.sh's one-line
reason) and *fails* it under ``CI=true``, so CI never passes by skipping the real peers.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

BUILD_SCRIPT = Path(__file__).with_name("build.sh")
PEERS = ("jaeger", "otelcol", "ferretdb")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A cold build of the collector on the 2-core CI machine takes several minutes; a warm call
# only hashes the pins.
BUILD_TIMEOUT_S = 3600


class PeerBuildError(RuntimeError):
    """build.sh could not produce the binary; the message is its one-line reason."""


@functools.cache
def build_peer(name: str) -> Path:
    """Build (or find in the cache) peer ``name`` and return its binary; raise PeerBuildError."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT), name],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerBuildError(f"build.sh {name}: {exc}") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        reason = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise PeerBuildError(reason[0])
    binary = Path(lines[-1])
    if not os.access(binary, os.X_OK):
        raise PeerBuildError(f"build.sh {name} printed {binary}, which is not executable")
    return binary


def peer_binary(name: str) -> Path:
    """The peer's binary for a test: skip locally, fail under CI=true, when it can't be built."""
    try:
        return build_peer(name)
    except PeerBuildError as exc:
        message = f"the {name} peer is unavailable: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: tests with real peers must run)", pytrace=False)
        pytest.skip(message)
