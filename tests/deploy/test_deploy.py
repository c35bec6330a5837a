"""deploy/: Dockerfile, compose and Kubernetes manifests agree with each other and with otel-diag.

No Docker engine runs here, so these check structure: every referenced file exists, the YAML
and JSON parse, and ports, service names and credentials line up.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from tests.deploy.test_collector_config import default_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())


def _k8s(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_dockerfile_is_slim_non_root_and_serves_the_default_ports() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert stages
    assert all(line.split()[1].endswith("-slim") or " AS " in line for line in stages)
    assert re.search(r"^USER (?!root|0)\S+", text, re.M)
    assert f"EXPOSE {default_port('grpc_port')} {default_port('http_port')}" in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'ENTRYPOINT ["otel-diag"]' in text


def test_compose_has_the_whole_stack_and_every_mounted_file_exists() -> None:
    services = _compose()["services"]
    assert set(services) >= {"collector", "jaeger", "tempo", "grafana", "postgres", "otel-diag"}
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).resolve().exists(), f"{name}: {source}"
    build = services["otel-diag"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_collector_runs_the_gateway_config_against_compose_services() -> None:
    services = _compose()["services"]
    mounts = dict(v.split(":")[:2] for v in services["collector"]["volumes"] if v.startswith("."))
    config_path = (
        DEPLOY / next(k for k, v in mounts.items() if v.endswith("config.yaml"))
    ).resolve()
    assert config_path == ROOT / "collector_config" / "gateway.yaml"
    cfg = yaml.safe_load(config_path.read_text())
    for exporter in cfg["exporters"].values():
        endpoint = exporter.get("endpoint", "")
        if endpoint and not endpoint.startswith("0.0.0.0"):
            assert endpoint.split(":")[0] in services, endpoint
    queue_dir = cfg["extensions"]["file_storage/otel_diag"]["directory"]
    assert any(v.endswith(":" + queue_dir) for v in services["collector"]["volumes"])
    assert "OTEL_DIAG_API_KEY" in services["collector"]["environment"]


def test_compose_otel_diag_uses_postgres_with_matching_credentials_and_keys() -> None:
    services = _compose()["services"]
    env = services["otel-diag"]["environment"]
    url = make_url(env["OTEL_DIAG_DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert url.get_backend_name() == "postgresql" and url.host == "postgres"
    assert (url.username, url.password, url.database) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    assert env["OTEL_DIAG_API_KEYS"].startswith("default:")  # 0.0.0.0 bind needs keys
    command = services["otel-diag"]["command"]
    assert command[command.index("--grpc-port") + 1] == str(default_port("grpc_port"))
    assert command[command.index("--http-port") + 1] == str(default_port("http_port"))
    assert "{trace_id}" in env["OTEL_DIAG_TRACE_URL_TEMPLATE"]


def test_grafana_is_provisioned_with_tempo_postgres_and_the_dashboard() -> None:
    services = _compose()["services"]
    prov = DEPLOY / "grafana" / "provisioning"
    sources = yaml.safe_load((prov / "datasources" / "datasources.yaml").read_text())["datasources"]
    by_type = {s["type"]: s for s in sources}
    tempo_port = yaml.safe_load((DEPLOY / "tempo" / "tempo.yaml").read_text())["server"][
        "http_listen_port"
    ]
    assert by_type["tempo"]["url"] == f"http://tempo:{tempo_port}"
    pg = by_type["grafana-postgresql-datasource"]
    pg_env = services["postgres"]["environment"]
    assert pg["url"] == "postgres:5432" and pg["jsonData"]["database"] == pg_env["POSTGRES_DB"]
    assert pg["user"] == pg_env["POSTGRES_USER"]
    providers = yaml.safe_load((prov / "dashboards" / "dashboards.yaml").read_text())["providers"]
    dash_dir = providers[0]["options"]["path"]
    assert any(v.endswith(":" + dash_dir + ":ro") for v in services["grafana"]["volumes"])
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "otel-diag.json").read_text())
    sql = " ".join(t["rawSql"] for p in dashboard["panels"] for t in p["targets"])
    for table in ("error_logs", "steps", "runs", "diagnostic_reports"):
        assert table in sql
    assert {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} == {
        pg["uid"]
    }


def test_k8s_runs_several_otel_diag_replicas_sharing_postgres() -> None:
    docs = _k8s("otel-diag.yaml")
    deployment = _find(docs, "Deployment", "otel-diag")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"otlp-grpc": default_port("grpc_port"), "http": default_port("http_port")}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    secret = _find(docs, "Secret", "otel-diag")["stringData"]
    url = make_url(secret["OTEL_DIAG_DATABASE_URL"])
    pg_secret = _find(_k8s("postgres.yaml"), "Secret", "postgres")["stringData"]
    assert url.host.startswith("postgres.")  # type: ignore[union-attr]
    assert (url.username, url.password, url.database) == (
        pg_secret["POSTGRES_USER"],
        pg_secret["POSTGRES_PASSWORD"],
        pg_secret["POSTGRES_DB"],
    )
    assert secret["OTEL_DIAG_API_KEYS"].endswith(":" + secret["OTEL_DIAG_API_KEY"])
    headless = _find(docs, "Service", "otel-diag-headless")
    assert headless["spec"]["clusterIP"] == "None"


def test_k8s_collector_embeds_the_scale_out_config_and_resolves_the_headless_service() -> None:
    docs = _k8s("collector.yaml")
    embedded = yaml.safe_load(_find(docs, "ConfigMap", "otel-collector")["data"]["config.yaml"])
    assert embedded == yaml.safe_load((ROOT / "collector_config" / "scale-out.yaml").read_text())
    hostname = embedded["exporters"]["load_balancing/otel_diag"]["resolver"]["dns"]["hostname"]
    service, namespace = hostname.split(".")[:2]
    headless = _find(_k8s("otel-diag.yaml"), "Service", "otel-diag-headless")
    assert (service, namespace) == (headless["metadata"]["name"], headless["metadata"]["namespace"])
    container = _find(docs, "Deployment", "otel-collector")["spec"]["template"]["spec"][
        "containers"
    ][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "queue")["mountPath"]
    assert mount == embedded["extensions"]["file_storage/otel_diag"]["directory"]


def test_kustomization_lists_existing_manifests() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file()
    assert set(kustomization["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml"
    }


def test_k8s_metrics_scrape_sends_the_metrics_token_the_pods_accept() -> None:
    """With API keys, /metrics refuses an anonymous scrape: the shipped scrape job sends the
    Secret's metrics token, and the pods read that same Secret key."""
    docs = _k8s("otel-diag.yaml")
    secret = _find(docs, "Secret", "otel-diag")["stringData"]
    token = secret["OTEL_DIAG_METRICS_TOKEN"]
    assert token and token != secret["OTEL_DIAG_API_KEY"]
    deployment = _find(docs, "Deployment", "otel-diag")
    template = deployment["spec"]["template"]
    env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
    ref = env["OTEL_DIAG_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "otel-diag", "key": "OTEL_DIAG_METRICS_TOKEN"}

    (job,) = yaml.safe_load((DEPLOY / "prometheus" / "scrape-otel-diag.yaml").read_text())[
        "scrape_configs"
    ]
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"]
    namespaces = job["kubernetes_sd_configs"][0]["namespaces"]["names"]
    assert namespaces == [deployment["metadata"]["namespace"]]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(default_port("http_port"))
    relabelled = {tuple(r["source_labels"]) for r in job["relabel_configs"]}
    assert ("__meta_kubernetes_pod_annotation_prometheus_io_scrape",) in relabelled
    assert ("__meta_kubernetes_pod_annotation_prometheus_io_path",) in relabelled


def test_compose_sets_a_metrics_token_beside_the_api_keys() -> None:
    env = _compose()["services"]["otel-diag"]["environment"]
    assert "OTEL_DIAG_API_KEYS" in env and env["OTEL_DIAG_METRICS_TOKEN"]
