"""tests/peers/build.sh and peer_binary: what happens when a peer cannot be built.

A missing Go toolchain or a failed build is one line saying what to install or what failed
(with the build log's path) and a non-zero exit; in a test it is a skip locally and a
failure under CI=true, never a silent pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import tests.peers as peers
from tests.peers import BUILD_SCRIPT, PeerBuildError, build_peer, peer_binary

WITHOUT_GO = "/usr/bin:/bin"  # bash, coreutils, flock, sed; Go lives elsewhere


def build(*names: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT), *names],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )


@pytest.fixture
def no_go_on_path() -> str:
    if any(Path(d, "go").exists() for d in WITHOUT_GO.split(":")):
        pytest.skip("a Go toolchain is installed in /usr/bin or /bin")
    return WITHOUT_GO


def test_without_go_the_build_says_what_to_install_in_one_line(
    no_go_on_path: str, tmp_path: Path
) -> None:
    proc = build("otelcol", PATH=no_go_on_path, OTEL_DIAG_PEERS_CACHE=str(tmp_path))

    assert proc.returncode != 0
    assert proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "install Go >= 1.26" in line and "otelcol" in line


def test_an_unknown_peer_is_refused(tmp_path: Path) -> None:
    proc = build("zipkin", OTEL_DIAG_PEERS_CACHE=str(tmp_path))

    assert proc.returncode != 0
    assert "unknown peer 'zipkin'" in proc.stderr


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_a_failed_build_names_the_peer_and_its_log_and_caches_nothing(tmp_path: Path) -> None:
    """Modules that cannot be fetched (no proxy, empty module cache) fail the build."""
    cache = tmp_path / "peers"
    proc = build(
        "ferretdb",
        OTEL_DIAG_PEERS_CACHE=str(cache),
        GOMODCACHE=str(tmp_path / "empty-modcache"),
        GOPROXY="off",
    )

    assert proc.returncode != 0
    assert proc.stdout == ""
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("build.sh: building the ferretdb peer failed")
    log = Path(last.rsplit("full log: ", 1)[1])
    assert log.is_file() and "GOPROXY=off" in log.read_text()
    assert not [p for p in cache.iterdir() if p.is_dir()]  # no half-built binary left behind
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], check=False)  # Go's read-only cache


def test_under_ci_an_unbuildable_peer_fails_the_test(
    no_go_on_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", no_go_on_path)
    monkeypatch.setenv("OTEL_DIAG_PEERS_CACHE", str(tmp_path))
    monkeypatch.setattr(peers, "IN_CI", True)
    build_peer.cache_clear()

    with pytest.raises(pytest.fail.Exception, match="install Go"):
        peer_binary("otelcol")


def test_locally_an_unbuildable_peer_skips_with_the_reason(
    no_go_on_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", no_go_on_path)
    monkeypatch.setenv("OTEL_DIAG_PEERS_CACHE", str(tmp_path))
    monkeypatch.setattr(peers, "IN_CI", False)
    build_peer.cache_clear()

    with pytest.raises(pytest.skip.Exception, match="install Go"):
        peer_binary("otelcol")
    with pytest.raises(PeerBuildError):
        build_peer("otelcol")
