"""Shared plan builders and fixtures for the tests of envspec.kube (imported by test_kube_*.py).

Two kinds of input:

* a small hand-built plan shaped like preview-pr (namespace, quota, config, a
  Secret built from the environment, web and api Deployments with Services, the
  database Jobs in order, an HTTPRoute): the unit tests of apply/diff/destroy
  need exact, minimal objects they can mutate one field at a time;
* the repository's real environments, compiled by `envspec.pipeline`, for the
  command-line tests: `preview_pr_args()` rebinds preview-pr to the fake
  cluster with `--set cluster.context=fake --set cluster.digitalocean=false` (BIND_TO_FAKE) and pins the app images with
  `--param`, `seed_shared_infrastructure()` adds what preview-base would have
  installed, and `fake_helm` puts a stand-in `helm` on PATH.
"""

from __future__ import annotations

import copy
import os
import stat
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from envspec.kube.client import Kube, load_target
from envspec.plan import ClusterBinding, DatabaseDrop, DeployPlan, SecretSource
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


# --- the repository's environments on the fake cluster -------------------------------------

REPO = Path(__file__).resolve().parent.parent
PINNED = "@sha256:" + "b" * 64
WEB_IMAGE = "ghcr.io/aphiria/aphiria.com-web" + PINNED
API_IMAGE = "ghcr.io/aphiria/aphiria.com-api" + PINNED
GATEWAY_NS = "nginx-gateway"
GATEWAY_SERVICE = "nginx-gateway-nginx-gateway-fabric"  # what the nginx-gateway-fabric chart creates
GATEWAY_IP = "203.0.113.7"


# Rebinds a bundled environment to the fake cluster: its context, and no DigitalOcean lookup of the endpoint.
BIND_TO_FAKE = ("--set", "cluster.context=fake", "--set", "cluster.digitalocean=false")


def preview_pr_args(pr: int = 107, *, bind_to_fake: bool = True) -> list[str]:
    """--pr, pinned images and (by default) the fake cluster's context, for any preview-pr command."""
    args = ["--pr", str(pr), "--param", f"webImage={WEB_IMAGE}", "--param", f"apiImage={API_IMAGE}"]
    return [*args, *BIND_TO_FAKE] if bind_to_fake else args


def compile_preview_pr(pr: int = 107, sets: tuple[str, ...] = ()) -> Any:
    """The compiled preview-pr the CLI tests deploy (to count objects and name them)."""
    from envspec.pipeline import compile_environment

    params = [f"pr={pr}", f"webImage={WEB_IMAGE}", f"apiImage={API_IMAGE}"]
    return compile_environment("preview-pr", root=REPO, params=params, sets=["cluster.context=fake", "cluster.digitalocean=false", *sets])


def seed_gateway_service(fake: FakeKube) -> None:
    """The nginx-gateway-fabric chart's LoadBalancer Service, with the address DigitalOcean gave it."""
    if fake.get("v1", "Namespace", GATEWAY_NS) is None:
        fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NS},
                  "status": {"phase": "Active"}})
    fake.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": GATEWAY_SERVICE, "namespace": GATEWAY_NS},
              "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443}]}})
    fake.set_status("v1", "Service", GATEWAY_SERVICE, GATEWAY_NS, {"loadBalancer": {"ingress": [{"ip": GATEWAY_IP}]}})


def seed_shared_infrastructure(fake: FakeKube) -> None:
    """What preview-base and its charts leave on the preview cluster that preview-pr relies on.

    The gateway namespace, Service and the Gateway the routes attach to, cert-manager's
    namespace, and the PostgreSQL admin Secret in `default` that the database drop Job reads.
    """
    seed_gateway_service(fake)
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"},
              "status": {"phase": "Active"}})
    fake.put({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
              "metadata": {"name": "nginx-gateway", "namespace": GATEWAY_NS},
              "spec": {"gatewayClassName": "nginx", "listeners": []}})
    fake.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "postgres-admin", "namespace": "default"},
              "data": {"username": "cG9zdGdyZXM=", "password": "c2VjcmV0"}})


_FAKE_HELM = """import json, os, sys, urllib.request
import yaml

argv = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(argv) + "\\n")
state_path = {log!r} + ".releases.json"
releases = json.load(open(state_path)) if os.path.exists(state_path) else {{}}


def flag(name):
    return argv[argv.index(name) + 1] if name in argv else None


if argv[0] == "list":  # helm list --namespace NS --filter ^REL$ --output json
    wanted = flag("--filter").strip("^$")
    print(json.dumps([r for r in releases.values() if r["namespace"] == flag("--namespace") and r["name"] == wanted]))
    sys.exit(0)
if argv[:2] == ["get", "values"]:  # helm get values REL --namespace NS --output json
    release = releases.get(flag("--namespace") + "/" + argv[2])
    if release is None:
        sys.stderr.write("Error: release: not found\\n")
        sys.exit(1)
    print(json.dumps(release["values"] or None))
    sys.exit(0)
# Like the real chart install: --create-namespace makes the release namespace, in the cluster
# the --kubeconfig/--kube-context pair names (so a wrong target would show up as a missing namespace).
if "--create-namespace" in argv:
    config = yaml.safe_load(open(flag("--kubeconfig")))
    context = flag("--kube-context") or config["current-context"]
    cluster = next(c["context"]["cluster"] for c in config["contexts"] if c["name"] == context)
    server = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == cluster)
    body = json.dumps({{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": flag("--namespace")}}}})
    request = urllib.request.Request(server + "/api/v1/namespaces", data=body.encode(), method="POST",
                                     headers={{"Content-Type": "application/json"}})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise
release, ref = argv[2], argv[3]
name = ref.rsplit("/", 1)[-1] if ref.startswith("oci://") else ref
releases[flag("--namespace") + "/" + release] = {{
    "name": release, "namespace": flag("--namespace"), "status": "deployed",
    "chart": name + "-" + flag("--version"), "values": json.load(open(flag("-f")))}}
json.dump(releases, open(state_path, "w"))
"""


@pytest.fixture
def fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `helm` on PATH that records its argv (one JSON list per line, in the returned file) and
    remembers installed releases, so `helm list` / `helm get values` answer like the real one."""
    log = tmp_path / "helm-argv.jsonl"
    log.touch()
    script = tmp_path / "helm-bin" / "helm"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n" + _FAKE_HELM.format(log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def helm_installs(log: Path) -> list[list[str]]:
    """The `helm upgrade --install` command lines the fake helm was given, in order."""
    import json

    return [argv for argv in map(json.loads, log.read_text().splitlines()) if argv[:2] == ["upgrade", "--install"]]


# --- remote manifests without a network ------------------------------------------------------

GATEWAY_API_CRDS = """# Gateway API standard channel (a stand-in: one CRD of the real bundle)
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gatewayclasses.gateway.networking.k8s.io
  annotations:
    gateway.networking.k8s.io/bundle-version: v1.4.0
    gateway.networking.k8s.io/channel: standard
  creationTimestamp: null
spec:
  group: gateway.networking.k8s.io
  names: {kind: GatewayClass, listKind: GatewayClassList, plural: gatewayclasses, singular: gatewayclass}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object}}
status:
  acceptedNames: {kind: "", plural: ""}
  conditions: null
  storedVersions: null
"""


def seed_manifest_cache(cache_dir: Path, url: str, text: str) -> None:
    """Put `text` where envspec's ENVSPEC_CACHE_DIR cache keeps the manifest of `url`."""
    import hashlib

    path = cache_dir / "manifests" / (hashlib.sha256(url.encode()).hexdigest() + ".yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def manifest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ENVSPEC_CACHE_DIR holding a stand-in for every manifest URL the repository's environments name,
    so commands on preview-base, production and local need no network."""
    from envspec.pipeline import compile_environment

    cache = tmp_path / "envspec-cache"
    for env in ("preview-base", "production", "local"):
        for manifest in compile_environment(env, root=REPO).plan.remote_manifests:
            seed_manifest_cache(cache, manifest.url, GATEWAY_API_CRDS)
    monkeypatch.setenv("ENVSPEC_CACHE_DIR", str(cache))
    return cache
