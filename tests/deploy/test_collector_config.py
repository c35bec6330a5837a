"""collector_config/: the Collector configs are consistent, current and aimed at otel-diag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_diag.cli.serve import serve_command
from otel_diag.semconv import DIAGNOSIS_MARKER

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector_config"
DEPRECATED = {"otlp", "otlphttp", "loadbalancing", "spanmetrics"}  # exporter/connector aliases


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / name).read_text())


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def default_port(option: str) -> int:
    param = next(p for p in serve_command.params if p.name == option)
    return int(param.default)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["gateway.yaml", "scale-out.yaml"])
def test_every_component_a_pipeline_names_is_defined(name: str) -> None:
    cfg = _load(name)
    connectors = set(cfg.get("connectors", {}))
    for pipeline_id, pipeline in cfg["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            defined = set(cfg.get(kind, {})) | connectors
            for component in pipeline.get(kind, []):
                assert component in defined, f"{name}: {pipeline_id} uses undefined {component}"
    for ext in cfg["service"]["extensions"]:
        assert ext in cfg["extensions"]


@pytest.mark.parametrize("name", ["gateway.yaml", "scale-out.yaml"])
def test_no_deprecated_component_names(name: str) -> None:
    cfg = _load(name)
    for kind in ("exporters", "connectors"):
        for component in cfg.get(kind, {}):
            assert _type(component) not in DEPRECATED, f"{name}: {component} is a deprecated alias"


@pytest.mark.parametrize("name", ["gateway.yaml", "scale-out.yaml"])
def test_memory_limiter_comes_first_and_otel_diag_sees_every_span(name: str) -> None:
    cfg = _load(name)
    for pipeline in cfg["service"]["pipelines"].values():
        if pipeline.get("processors"):
            assert pipeline["processors"][0] == "memory_limiter"
    diag = cfg["service"]["pipelines"]["traces/otel_diag"]
    assert "tail_sampling" not in diag["processors"]
    viewers = cfg["service"]["pipelines"]["traces/viewers"]
    assert "tail_sampling" in viewers["processors"]
    policies = cfg["processors"]["tail_sampling"]["policies"]
    assert any(
        p["type"] == "status_code" and p["status_code"]["status_codes"] == ["ERROR"]
        for p in policies
    )


@pytest.mark.parametrize("name", ["gateway.yaml", "scale-out.yaml"])
def test_the_viewers_keep_every_diagnosis_span_whatever_the_sample(name: str) -> None:
    """A ``diagnose {run}`` span sent through the collector is never sampled away."""
    policies = _load(name)["processors"]["tail_sampling"]["policies"]
    assert any(
        p["type"] == "boolean_attribute"
        and p["boolean_attribute"] == {"key": DIAGNOSIS_MARKER, "value": True}
        for p in policies
    )


def _otel_diag_exporter(cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [exporter] = [
        e for e in cfg["service"]["pipelines"]["traces/otel_diag"]["exporters"] if "otel_diag" in e
    ]
    return exporter, cfg["exporters"][exporter]


def _assert_queued_with_retry(cfg: dict[str, Any], exporter: dict[str, Any]) -> None:
    """A persistent (file_storage) sending queue and a retry that never gives up."""
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    assert (
        queue["storage"] in cfg["extensions"] and queue["storage"] in cfg["service"]["extensions"]
    )
    assert _type(queue["storage"]) == "file_storage"
    assert exporter["retry_on_failure"]["enabled"] is True
    assert exporter["retry_on_failure"]["max_elapsed_time"] == "0s"


def _assert_authenticated(otlp: dict[str, Any]) -> None:
    assert otlp["headers"]["authorization"].startswith("Bearer ${env:OTEL_DIAG_API_KEY}")


def test_gateway_sends_to_otel_diag_grpc_port_with_a_persistent_queue_and_retry() -> None:
    cfg = _load("gateway.yaml")
    exporter, otlp = _otel_diag_exporter(cfg)
    assert _type(exporter) == "otlp_grpc"
    host, port = otlp["endpoint"].rsplit(":", 1)
    assert (host, int(port)) == ("otel-diag", default_port("grpc_port"))
    _assert_queued_with_retry(cfg, otlp)
    _assert_authenticated(otlp)
    assert "span_metrics" in cfg["connectors"]
    assert cfg["service"]["pipelines"]["metrics/span_metrics"]["receivers"] == ["span_metrics"]


def test_scale_out_routes_by_trace_id_to_the_replicas() -> None:
    cfg = _load("scale-out.yaml")
    exporter, lb = _otel_diag_exporter(cfg)
    assert _type(exporter) == "load_balancing"
    assert lb["routing_key"] == "traceID"
    assert lb["resolver"]["dns"]["port"] == str(default_port("grpc_port"))
    _assert_authenticated(lb["protocol"]["otlp"])


def test_scale_out_keeps_the_persistent_queue_at_the_load_balancing_level() -> None:
    """Per-replica exporters cannot share one file_storage queue: only the first one starts.

    So the disk queue and the endless retry belong to ``load_balancing`` itself, and each
    replica's exporter sends without a queue of its own and hands failures back to it.
    """
    cfg = _load("scale-out.yaml")
    _, lb = _otel_diag_exporter(cfg)
    _assert_queued_with_retry(cfg, lb)
    per_replica = lb["protocol"]["otlp"]
    assert per_replica["sending_queue"]["enabled"] is False
    assert per_replica["retry_on_failure"]["max_elapsed_time"] != "0s"


def test_receivers_listen_on_the_otlp_ports() -> None:
    for name in ("gateway.yaml", "scale-out.yaml"):
        protocols = _load(name)["receivers"]["otlp"]["protocols"]
        assert protocols["grpc"]["endpoint"].endswith(":4317")
        assert protocols["http"]["endpoint"].endswith(":4318")


def test_readme_explains_both_configs() -> None:
    text = (CONFIGS / "README.md").read_text()
    for word in (
        "gateway.yaml",
        "scale-out.yaml",
        "memory_limiter",
        "sending_queue",
        "routing_key",
    ):
        assert word in text
