"""Every collector config we ship loads in a real OpenTelemetry Collector.

The collector is the one ``tests/peers/otelcol`` pins (the components our configs use, all at
one release), built once by ``tests/peers/build.sh``. Its own ``validate`` command reads each
config the way ``otelcol --config`` would (component names, every key, pipelines, extensions)
without starting anything. Checked: ``collector_config/*.yaml``, the config the compose stack
mounts, and the one embedded in the Kubernetes ConfigMap. A config that does not validate
fails with the collector's own message.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.peers import peer_binary

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector_config"
DEPLOY = ROOT / "deploy"

# A cold build of the collector runs inside the first test that needs it.
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def otelcol() -> Path:
    return peer_binary("otelcol")


def validate(otelcol: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OTEL_DIAG_API_KEY": "validate-only-key"}
    return subprocess.run(
        [str(otelcol), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_valid(otelcol: Path, config: Path, label: str) -> None:
    proc = validate(otelcol, config)
    assert proc.returncode == 0, (
        f"{label} does not validate in the collector (exit {proc.returncode}):\n"
        f"{proc.stderr.strip()}\n{proc.stdout.strip()}"
    )


def compose_collector_config() -> Path:
    """The file the compose stack mounts as the collector's config."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    collector = compose["services"]["collector"]
    config_arg = next(a for a in collector["command"] if a.startswith("--config="))
    target = config_arg.split("=", 1)[1]
    for volume in collector["volumes"]:
        source, mount = volume.split(":")[:2]
        if mount == target:
            return (DEPLOY / source).resolve()
    raise AssertionError(f"compose mounts nothing at the collector's --config {target}")


def k8s_collector_config(tmp_path: Path) -> Path:
    """The ConfigMap's config.yaml, extracted to a file."""
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "collector.yaml").read_text()) if d]
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    path = tmp_path / "k8s-collector-config.yaml"
    path.write_text(configmap["data"]["config.yaml"])
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_collector_config_validates(otelcol: Path, name: str) -> None:
    assert_valid(otelcol, CONFIGS / name, f"collector_config/{name}")


def test_the_config_compose_mounts_validates(otelcol: Path) -> None:
    assert_valid(otelcol, compose_collector_config(), "deploy/docker-compose.yaml's collector")


def test_the_config_in_the_k8s_configmap_validates(otelcol: Path, tmp_path: Path) -> None:
    assert_valid(otelcol, k8s_collector_config(tmp_path), "deploy/k8s/collector.yaml ConfigMap")


def _component_types(cfg: dict[str, Any]) -> dict[str, set[str]]:
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    return {kind: {cid.split("/", 1)[0] for cid in cfg.get(kind) or {}} for kind in kinds}


def test_the_collector_build_has_every_component_the_configs_use(otelcol: Path) -> None:
    proc = subprocess.run(
        [str(otelcol), "components"], capture_output=True, text=True, timeout=60, check=True
    )
    built = yaml.safe_load(proc.stdout)
    for path in CONFIGS.glob("*.yaml"):
        for kind, types in _component_types(yaml.safe_load(path.read_text())).items():
            available = {c["name"] for c in built.get(kind) or []}
            assert types <= available, f"{path.name}: {kind} {types - available} not built in"


def test_a_config_the_collector_cannot_load_fails_with_the_collectors_message(
    otelcol: Path, tmp_path: Path
) -> None:
    """The check has teeth: a misspelt key is refused, and the collector says which."""
    cfg = yaml.safe_load((CONFIGS / "gateway.yaml").read_text())
    cfg["processors"]["tail_sampling"]["decision_wiat"] = "10s"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(cfg))

    proc = validate(otelcol, broken)

    assert proc.returncode != 0
    assert "decision_wiat" in proc.stderr + proc.stdout
