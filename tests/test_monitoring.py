"""aphiria's monitoring bundle, rate limiting, probes and app settings (issue 12), as the environments render them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from envspec.cli import main
from envspec.errors import SpecError
from envspec.pipeline import compile_environment

MONITORED = {"local": ("local", "grafana.aphiria.com"), "preview-base": ("preview", "pr-grafana.aphiria.com"),
             "production": ("production", "grafana.aphiria.com")}
APPS = {"local": (), "preview-pr": ("pr=107",), "production": ()}


@pytest.fixture(autouse=True)
def _at_repo_root(repo_root: Path) -> None:
    """The bundled project (compile_environment finds it from the working directory)."""


def objects(env: str, *params: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    compiled = compile_environment(env, params=list(params))
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in compiled.objects}


def load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("env", sorted(MONITORED))
def test_namespace_and_quota(env: str) -> None:
    found = objects(env)
    assert ("Namespace", "", "monitoring") in found
    quota = found[("ResourceQuota", "monitoring", "monitoring-quota")]
    assert quota["spec"]["hard"] == {"requests.cpu": "4", "limits.cpu": "4", "requests.memory": "16Gi",
                                     "limits.memory": "16Gi", "pods": "30"}


@pytest.mark.parametrize("env", sorted(MONITORED))
def test_kube_prometheus_stack_chart(env: str) -> None:
    label, _ = MONITORED[env]
    [chart] = [h for h in compile_environment(env).plan.helm if h.release == "kube-prometheus-stack"]
    assert (chart.chart, chart.version, chart.namespace) == ("kube-prometheus-stack", "70.10.0", "monitoring")
    assert chart.repository == "https://prometheus-community.github.io/helm-charts"
    v = chart.values
    assert v["crds"] == {"enabled": True} and v["grafana"] == {"enabled": False} and v["alertmanager"] == {"enabled": False}
    operator = v["prometheusOperator"]
    assert operator["tls"] == {"enabled": False} and operator["admissionWebhooks"] == {"enabled": False}
    assert operator["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}
    assert operator["prometheusConfigReloader"]["resources"] == {
        "requests": {"cpu": "50m", "memory": "50Mi"}, "limits": {"cpu": "100m", "memory": "100Mi"}}
    spec = v["prometheus"]["prometheusSpec"]
    assert (spec["retention"], spec["scrapeInterval"], spec["externalLabels"]) == ("3d", "60s", {"environment": label})
    assert spec["resources"] == {"requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"cpu": "1000m", "memory": "2Gi"}}
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
    assert v["prometheus-node-exporter"]["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}}
    assert v["kube-state-metrics"]["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "100m", "memory": "256Mi"}}


@pytest.mark.parametrize("env", sorted(MONITORED))
def test_grafana(env: str) -> None:
    found = objects(env)
    grafana = found[("Deployment", "monitoring", "grafana")]
    spec = grafana["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 472 and pod["securityContext"]["fsGroup"] == 472
    [container] = pod["containers"]
    assert container["image"] == "grafana/grafana:11.0.0"
    assert container["ports"][0]["containerPort"] == 3000
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/api/health"
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}
    claim = found[("PersistentVolumeClaim", "monitoring", "grafana-data")]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"] and claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["GF_AUTH_GITHUB_ALLOWED_ORGANIZATIONS"]["value"] == "aphiria"
    for name in ("GF_AUTH_GITHUB_CLIENT_ID", "GF_AUTH_GITHUB_CLIENT_SECRET", "GF_SECURITY_ADMIN_PASSWORD"):
        assert "valueFrom" in env_vars[name] and "value" not in env_vars[name], name  # from a Secret built at apply
    assert not any(e.get("value") == "admin" for e in container["env"] if e["name"] == "GF_SECURITY_ADMIN_PASSWORD")
    smtp = "GF_SMTP_HOST" in env_vars
    assert smtp == (env == "production")


@pytest.mark.parametrize("env", sorted(MONITORED))
def test_grafana_provisioning(env: str) -> None:
    label, _ = MONITORED[env]
    found = objects(env)
    [datasource] = load(found[("ConfigMap", "monitoring", "grafana-datasources")]["data"]["datasources.yaml"])["datasources"]
    assert datasource["url"] == "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
    assert datasource["isDefault"] is True and datasource["type"] == "prometheus"
    dashboards = found[("ConfigMap", "monitoring", "grafana-dashboards")]["data"]
    assert "cluster-overview.json" in dashboards
    home = {e["name"]: e.get("value") for e in containers(found[("Deployment", "monitoring", "grafana")])[0]["env"]}
    assert home["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].endswith("/cluster-overview.json")
    import json

    for text in dashboards.values():
        assert json.loads(text)["panels"]
    alerting = found[("ConfigMap", "monitoring", "grafana-alerting")]["data"]
    rules = {r["uid"]: r for r in load(alerting["alert-rules.yaml"])["groups"][0]["rules"]}
    expected = {"high-cpu": (0.8, "10m"), "high-memory": (0.9, "10m"), "api-latency-p95": (1, "5m"),
                "api-4xx-ratio": (0.1, "5m"), "api-5xx-ratio": (0.05, "5m"), "crash-loop": (0, "5m"), "failed-pods": (0, "5m")}
    assert set(rules) == set(expected)
    for uid, (threshold, duration) in expected.items():
        rule = rules[uid]
        assert rule["for"] == duration and rule["labels"]["environment"] == label
        [condition] = [d for d in rule["data"] if d["refId"] == rule["condition"]][0]["model"]["conditions"]
        assert condition["evaluator"] == {"type": "gt", "params": [threshold]}
    assert "CrashLoopBackOff" in rules["crash-loop"]["data"][0]["model"]["expr"]
    assert 'phase="Failed"' in rules["failed-pods"]["data"][0]["model"]["expr"]
    [contact] = load(alerting["contact-points.yaml"])["contactPoints"]
    [receiver] = contact["receivers"]
    if env == "production":
        assert receiver["type"] == "email" and receiver["settings"]["addresses"] == "admin@aphiria.com"
    else:
        assert receiver["type"] == "webhook" and receiver["settings"]["url"].startswith("http")
    [policy] = load(alerting["notification-policy.yaml"])["policies"]
    assert policy["group_by"] == ["alertname", "environment"] and policy["receiver"] == contact["name"]


@pytest.mark.parametrize("env", sorted(MONITORED))
def test_grafana_route_listener_certificate_and_dns(env: str) -> None:
    _, host = MONITORED[env]
    compiled = compile_environment(env)
    found = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in compiled.objects}
    route = found[("HTTPRoute", "monitoring", "grafana")]
    assert route["spec"]["hostnames"] == [host]
    [parent] = route["spec"]["parentRefs"]
    gateway = found[("Gateway", "nginx-gateway", "nginx-gateway")]
    listener = next(item for item in gateway["spec"]["listeners"] if item["name"] == parent["sectionName"])
    assert listener["hostname"] == host and listener["protocol"] == "HTTPS"
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "grafana", "port": 3000}]
    assert ("HTTPRoute", "monitoring", "grafana-https-redirect") in found
    certificate = next(o for o in compiled.objects if o["kind"] == "Certificate")
    assert host in certificate["spec"]["dnsNames"]
    if env != "local":
        records = [r.name for r in compiled.spec.digitalocean.dns.records]
        assert host.removesuffix(".aphiria.com") in records


def test_preview_pr_runs_no_bundle_of_its_own() -> None:
    compiled = compile_environment("preview-pr", params=["pr=107"])
    assert not any(o["metadata"].get("namespace") == "monitoring" or o["kind"] == "Namespace" and o["metadata"]["name"] == "monitoring"
                   for o in compiled.objects)
    assert [h.release for h in compiled.plan.helm] == []
    assert not any(s.namespace == "monitoring" for s in compiled.plan.secrets)


@pytest.mark.parametrize("env", sorted(APPS))
def test_api_service_monitor(env: str) -> None:
    found = objects(env, *APPS[env])
    namespace = "preview-pr-107" if env == "preview-pr" else "default"
    monitor = found[("ServiceMonitor", namespace, "api-metrics")]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "60s")
    service = found[("Service", namespace, "api")]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert all(service["metadata"]["labels"].get(k) == v for k, v in selector.items())
    token = endpoint["authorization"]["credentials"]["name"]
    assert token in {s.name for s in compile_environment(env, params=list(APPS[env])).plan.secrets}


def test_preview_network_policy_admits_monitoring() -> None:
    found = objects("preview-pr", "pr=107")
    [policy] = [o for k, o in found.items() if k[0] == "NetworkPolicy"]
    sources = [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for rule in policy["spec"]["ingress"] for f in rule["from"]]
    assert "monitoring" in sources and "nginx-gateway" in sources


def test_preview_routes_are_rate_limited() -> None:
    found = objects("preview-pr", "pr=107")
    [policy] = [o for k, o in found.items() if k[0] == "RateLimitPolicy"]
    assert policy["apiVersion"] == "gateway.nginx.org/v1alpha1"
    targets = {(t["kind"], t["name"]) for t in policy["spec"]["targetRefs"]}
    assert targets == {("HTTPRoute", "web"), ("HTTPRoute", "api")}
    assert all(("HTTPRoute", "preview-pr-107", name) in found for _, name in targets)
    [rule] = policy["spec"]["rateLimit"]["local"]["rules"]
    assert (rule["rate"], rule["burst"]) == ("10r/s", 20)


def test_production_rate_limit_is_opt_in() -> None:
    assert not any(k[0] == "RateLimitPolicy" for k in objects("production"))
    [policy] = [o for k, o in objects("production", "rateLimit=true").items() if k[0] == "RateLimitPolicy"]
    assert {t["name"] for t in policy["spec"]["targetRefs"]} == {"web", "api"}


@pytest.mark.parametrize("env", ["preview-base", "production", "local"])
def test_nginx_gateway_fabric_serves_rate_limit_policies(env: str) -> None:
    [chart] = [h for h in compile_environment(env).plan.helm if h.chart == "nginx-gateway-fabric"]
    major, minor = (int(x) for x in chart.version.split(".")[:2])
    assert (major, minor) >= (2, 4)


@pytest.mark.parametrize("env", ["local", "preview-base", "preview-pr", "production"])
def test_every_http_container_has_probes(env: str) -> None:
    params = ["pr=107"] if env == "preview-pr" else []
    for obj in compile_environment(env, params=params).objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in containers(obj):
            assert "readinessProbe" in container and "livenessProbe" in container, (env, obj["metadata"]["name"], container["name"])


def test_web_and_api_probe_paths() -> None:
    found = objects("production")
    web = {c["name"]: c for c in containers(found[("Deployment", "default", "web")])}
    api = {c["name"]: c for c in containers(found[("Deployment", "default", "api")])}
    assert web["web"]["readinessProbe"]["httpGet"]["path"] == "/" and web["web"]["livenessProbe"]["httpGet"]["path"] == "/"
    assert api["nginx"]["readinessProbe"]["httpGet"]["path"] == "/health"
    assert api["nginx"]["livenessProbe"]["httpGet"]["path"] == "/health"
    nginx_conf = found[("ConfigMap", "default", "api-nginx")]["data"]["default.conf"]
    assert "location = /health" in nginx_conf


@pytest.mark.parametrize("env", ["local", "preview-base", "production"])
def test_postgresql_probes_and_graceful_stop(env: str) -> None:
    db = objects(env)[("Deployment", "default", "db")]
    pod = db["spec"]["template"]["spec"]
    [postgres] = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert "pg_isready" in " ".join(postgres[probe]["exec"]["command"])
    assert "pg_ctl stop" in " ".join(postgres["lifecycle"]["preStop"]["exec"]["command"])
    assert "-m fast" in " ".join(postgres["lifecycle"]["preStop"]["exec"]["command"])
    assert pod["terminationGracePeriodSeconds"] == 90


@pytest.mark.parametrize(("env", "level"), [("preview-pr", "debug"), ("production", "warning"), ("local", "debug")])
def test_app_settings(env: str, level: str) -> None:
    params = ["pr=107"] if env == "preview-pr" else []
    config = objects(env, *params)[("ConfigMap", "preview-pr-107" if env == "preview-pr" else "default", "app-config")]["data"]
    assert config["LOG_LEVEL"] == level
    assert config["WEB_URL"] == config["APP_WEB_URL"] and config["API_URL"] == config["APP_API_URL"]
    assert (config.get("PR_NUMBER") == "107") == (env == "preview-pr")
    required = compile_environment(env, params=params).spec.apps["api"].requiredEnv
    assert {"LOG_LEVEL", "WEB_URL", "API_URL"} <= set(required)
    assert ("PR_NUMBER" in required) == (env == "preview-pr")


def test_a_missing_required_setting_is_an_error() -> None:
    with pytest.raises(SpecError, match="LOG_LEVEL"):
        compile_environment("production", sets=["configMaps.app-config.LOG_LEVEL=null"])


@pytest.mark.parametrize("env", ["local", "preview-base", "preview-pr", "production"])
def test_validates_against_kubernetes_schemas_and_shared_crds(env: str, crd_dirs: list[Path]) -> None:
    args = ["validate", env, "--crds", str(crd_dirs[0].parent)] + (["--pr", "107"] if env == "preview-pr" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


def test_the_preview_deploy_and_cleanup_roles_cover_the_new_preview_kinds() -> None:
    """preview-pr now renders a ServiceMonitor and a RateLimitPolicy: the CI accounts must be allowed them."""
    found = objects("preview-base")
    for role in ("envspec-deploy", "envspec-cleanup"):
        rules = found[("ClusterRole", "", role)]["rules"]
        granted = {(group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
        assert ("monitoring.coreos.com", "servicemonitors") in granted, role
        assert ("gateway.nginx.org", "ratelimitpolicies") in granted, role
