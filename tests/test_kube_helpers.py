"""Shared plan builders and fixtures for the tests of envspec.kube (imported by test_kube_*.py).

Until `envspec.pipeline.compile_environment` exists these tests use a
hand-built plan shaped like preview-pr: a namespace, quota, config, a secret
built from the environment, web and api Deployments with Services, the
database Jobs in order, and an HTTPRoute plus Certificate.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import pytest

from envspec.kube.client import Kube, load_target
from envspec.kube.plan import ClusterBinding, DatabaseDrop, DeployPlan, SecretSource
from envspec.kube.retry import RetryPolicy
from envspec.kube.wait import WaitSettings
from tests.fakes import kube_server as _kube_server
from tests.fakes.kube_server import FakeKube, fake_kube  # noqa: F401  (re-exported fixture)

# The fake writes headers and body in two sends; with Nagle on, each keep-alive response
# waits ~40 ms for a delayed ACK. Reported to the fake's author; harmless if already set there.
_kube_server._Handler.disable_nagle_algorithm = True

DIGEST = "@sha256:" + "a" * 64
CANARY = "canary-7f3e9c1d-do-not-print"
INSTANCE = "preview-pr-107"
NS = INSTANCE


def labels(instance: str = INSTANCE) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "envspec",
        "envspec.dev/environment": "preview-pr",
        "envspec.dev/instance": instance,
    }


def _meta(name: str, ns: str | None = NS, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels()}
    if ns:
        meta["namespace"] = ns
    meta.update(extra)
    return meta


def deployment(name: str, image: str = "ghcr.io/aphiria/web" + DIGEST, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name),
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]},
    }


def job(name: str, command: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(name),
        "spec": {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": name, "image": "postgres" + DIGEST, "command": ["sh", "-c", command]}],
                }
            },
        },
    }


def objects() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NS, ns=None)},
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta("preview-quota"),
            "spec": {"hard": {"limits.cpu": "4", "limits.memory": "4Gi"}},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("js-config"), "data": {"apiUri": "https://107.pr-api"}},
        deployment("web"),
        service("web"),
        deployment("api", image="ghcr.io/aphiria/api" + DIGEST),
        service("api"),
        job("db-create", "createdb preview_pr_107"),
        job("db-migrate", "phinx migrate"),
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": _meta("web"),
            "spec": {
                "parentRefs": [{"name": "nginx-gateway", "namespace": "nginx-gateway"}],
                "hostnames": ["107.pr.aphiria.com"],
                "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
            },
        },
    ]


def plan(objs: list[dict[str, Any]] | None = None, **overrides: Any) -> DeployPlan:
    fields: dict[str, Any] = dict(
        environment="preview-pr",
        instance=INSTANCE,
        objects=copy.deepcopy(objects() if objs is None else objs),
        cluster=ClusterBinding(context="fake"),
        labels=labels(),
        secrets=[SecretSource(name="db-credentials", namespace=NS, data_from_env={"password": "ENVSPEC_TEST_DB_PASSWORD"})],
        owned_namespaces=[NS],
        protected_namespaces=["default", "kube-system", "postgres"],
        requires_pinned_images=True,
        database_drop=DatabaseDrop(
            database="preview_pr_107",
            host="postgres.postgres.svc.cluster.local",
            port=5432,
            image="postgres" + DIGEST,
            namespace="postgres",
            user_secret="postgres-admin",
        ),
        applyset_namespace="default",
    )
    fields.update(overrides)
    return DeployPlan(**fields)


ENV = {"ENVSPEC_TEST_DB_PASSWORD": CANARY}


def fast_wait(timeout: float = 5.0) -> WaitSettings:
    return WaitSettings(timeout=timeout, interval=0.01)


def no_sleep_retry(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=lambda s: None)


@pytest.fixture
def kubeconfig(fake_kube: FakeKube, tmp_path: Path) -> Path:  # noqa: F811
    return fake_kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube(fake_kube: FakeKube, kubeconfig: Path) -> Iterator[Kube]:  # noqa: F811
    _, api_client = load_target(kubeconfig, None)
    client = Kube(api_client, retry=no_sleep_retry(), request_timeout=2.0)
    try:
        yield client
    finally:
        client.close()


def seed_database_namespace(fake: FakeKube) -> None:
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "postgres"}, "status": {"phase": "Active"}})
    fake.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "postgres-admin", "namespace": "postgres"},
            "data": {"username": "cG9zdGdyZXM=", "password": "c2VjcmV0"},
        }
    )
