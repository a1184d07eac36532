"""apply, diff and destroy against a real cluster (kind in CI); opt-in.

Set ENVSPEC_E2E_KUBECONFIG to a kubeconfig whose current context is a
disposable cluster. The plan is preview-pr shaped (namespace, quota, config,
a Secret from the environment, two Deployments with Services, two Jobs in
order) with public images, so it needs no registry credentials, database or
Gateway API CRDs; no HTTPRoute (kind runs no Gateway controller).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube, connect
from envspec.kube.destroy import DestroyOptions, destroy_instance
from envspec.kube.diff import diff_live
from envspec.plan import ClusterBinding, DeployPlan, SecretSource
from envspec.kube.wait import WaitSettings

KUBECONFIG = os.environ.get("ENVSPEC_E2E_KUBECONFIG")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="set ENVSPEC_E2E_KUBECONFIG to run against a real cluster"),
]

PAUSE = "registry.k8s.io/pause:3.9"
BUSYBOX = "busybox:1.36"
CANARY = "e2e-canary-" + uuid.uuid4().hex


def _labels(instance: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "envspec", "envspec.dev/environment": "preview-pr",
            "envspec.dev/instance": instance}


def _objects(instance: str, *, with_route: bool) -> list[dict[str, Any]]:
    ns, labels = instance, _labels(instance)
    resources = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "50m", "memory": "32Mi"}}

    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": ns, "labels": labels}

    def deployment(name: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name), "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": name, "image": PAUSE, "resources": resources}]}}}}

    def job(name: str) -> dict[str, Any]:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(name), "spec": {
            "backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": name, "image": BUSYBOX, "command": ["sh", "-c", f"echo {name}"], "resources": resources}]}}}}

    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta("quota"),
         "spec": {"hard": {"limits.cpu": "1", "limits.memory": "512Mi"}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("app-config"), "data": {"pr": "107"}},
        deployment("web"),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"),
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}},
        deployment("api"),
        job("create-database"),
        job("migrate"),
    ]
    if with_route:
        objs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("web"),
                     "spec": {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}})
    return objs


@pytest.fixture
def kube() -> Iterator[Kube]:
    _, client = connect(Path(KUBECONFIG or ""), None)
    try:
        yield client
    finally:
        client.close()


def _plan(instance: str, objects: list[dict[str, Any]] | None = None) -> DeployPlan:
    # No HTTPRoute by default: a route needs a Gateway controller to become Accepted, and kind has none.
    return DeployPlan(
        environment="preview-pr",
        instance=instance,
        objects=objects if objects is not None else _objects(instance, with_route=False),
        cluster=ClusterBinding(),
        labels=_labels(instance),
        secrets=[SecretSource(name="db-credentials", namespace=instance,
                              data_from_env={"password": "ENVSPEC_E2E_CANARY"})],
        owned_namespaces=[instance],
        protected_namespaces=["default", "kube-system"],
        applyset_namespace="default",
    )


def test_apply_diff_destroy_round_trip(kube: Kube, capsys: pytest.CaptureFixture[str]) -> None:
    instance = "e2e-pr-" + uuid.uuid4().hex[:6]
    plan = _plan(instance)
    env = {"ENVSPEC_E2E_CANARY": CANARY}
    wait = WaitSettings(timeout=300, interval=2)
    lines: list[str] = []
    try:
        first = apply_plan(kube, plan, ApplyOptions(environ=env, wait=wait, check_helm=False, report=lines.append))
        assert len(first.created) == len(plan.objects) + 1

        again = apply_plan(kube, plan, ApplyOptions(environ=env, wait=wait, check_helm=False, report=lines.append))
        assert not again.changed, (again.updated, again.created)

        assert not diff_live(kube, plan, environ=env).has_changes
        changed = _objects(instance, with_route=False)
        changed[2]["data"]["pr"] = "108"
        changes = diff_live(kube, _plan(instance, changed), environ=env)
        assert changes.changed == [f"ConfigMap/{instance}/app-config"]
        assert CANARY not in changes.diff

        third = apply_plan(kube, _plan(instance, changed[:-1]),  # drop "migrate": pruned
                           ApplyOptions(environ=env, wait=wait, check_helm=False, report=lines.append))
        assert third.pruned == [f"Job/{instance}/migrate"]
    finally:
        result = destroy_instance(kube, plan, DestroyOptions(wait=wait, grace_seconds=60, report=lines.append))
    assert result.namespaces == [instance]
    assert destroy_instance(kube, plan, DestroyOptions(wait=wait)).nothing
    out = capsys.readouterr()
    assert CANARY not in "\n".join(lines) + out.out + out.err


def test_a_field_dropped_inside_a_list_item_and_canonical_quantities(kube: Kube) -> None:
    """The server's own answers: `0.01` comes back as `10m` (no change), a dropped probe is removed."""
    instance = "e2e-ssa-" + uuid.uuid4().hex[:6]
    env = {"ENVSPEC_E2E_CANARY": CANARY}
    wait = WaitSettings(timeout=300, interval=2)

    def objects(probe: bool) -> list[dict[str, Any]]:
        objs = [o for o in _objects(instance, with_route=False) if o["kind"] in ("Namespace", "Deployment")]
        for obj in objs:
            if obj["kind"] == "Deployment":
                container = obj["spec"]["template"]["spec"]["containers"][0]
                container["resources"] = {"requests": {"cpu": "0.01", "memory": "0.015625Gi"},
                                          "limits": {"cpu": "0.05", "memory": "32Mi"}}
                container["ports"] = [{"containerPort": 80}]
                if probe:
                    container["readinessProbe"] = {"tcpSocket": {"port": 80}, "periodSeconds": 5}
        return objs

    options = ApplyOptions(environ=env, wait=wait, check_helm=False)
    try:
        apply_plan(kube, _plan(instance, objects(probe=True)), options)
        assert not apply_plan(kube, _plan(instance, objects(probe=True)), options).changed
        changes = diff_live(kube, _plan(instance, objects(probe=False)), environ=env)
        assert sorted(changes.changed) == sorted([f"Deployment/{instance}/web", f"Deployment/{instance}/api"])
        assert any(line.startswith("-") and "readinessProbe" in line for line in changes.diff.splitlines())
        updated = apply_plan(kube, _plan(instance, objects(probe=False)), options)
        assert sorted(updated.updated) == sorted([f"Deployment/{instance}/web", f"Deployment/{instance}/api"])
        live = kube.get("apps/v1", "Deployment", "web", instance)
        assert "readinessProbe" not in live["spec"]["template"]["spec"]["containers"][0]
        assert not apply_plan(kube, _plan(instance, objects(probe=False)), options).changed
    finally:
        destroy_instance(kube, _plan(instance, objects(probe=False)), DestroyOptions(wait=wait, grace_seconds=60))
