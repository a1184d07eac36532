"""How many requests and how long: `envspec apply` vs `kubectl apply --server-side`.

Runs against the in-repo fake API server (tests/fakes/kube_server.py) on
loopback, each tool on a fresh server:

* envspec: first apply of the plan, then a no-op re-apply;
* kubectl: `kubectl apply --server-side --validate=false -f DIR` of the same
  rendered objects (plus the Secrets envspec builds), twice.

The plan is the repository's preview-pr for PR 107, compiled by
`envspec.pipeline.compile_environment` with the app images pinned by digest
(as the deploy workflow passes them), so apply runs every preflight check,
including the pinned-image one. With `--apps N` (N > 2) the plan is a generated
environment that extends preview-pr with N - 2 more apps, each with a Service
and a route (Deployment, Service, HTTPRoute and its HTTPS redirect: 4 objects
per app). `--latency-ms` makes the fake server wait that long before serving
each request, as a network round trip would (requests wait in parallel).

Usage: `python bench/bench_apply.py [--repeat N] [--apps 100] [--latency-ms 5] [--workers 8]`.
The issue-14 goal is measured with `--apps 100 --latency-ms 5`: envspec's
first apply (which also waits for readiness) in no more wall time than
kubectl's, and with at most 1.2x its requests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envspec.kube.apply import APPLY_WORKERS, ApplyOptions, apply_plan  # noqa: E402
from envspec.kube.client import Kube, load_target  # noqa: E402
from envspec.kube.inventory import ApplySetRef  # noqa: E402
from envspec.plan import DeployPlan  # noqa: E402
from envspec.kube.secrets import build_secrets, complete_secrets, pending_keys  # noqa: E402
from envspec.kube.stages import desired_objects  # noqa: E402
from envspec.kube.wait import WaitSettings  # noqa: E402
from tests.fakes import kube_server  # noqa: E402
from tests.fakes.kube_server import FakeKube  # noqa: E402

# The fake sends headers and body separately; without TCP_NODELAY every keep-alive response
# waits for a delayed ACK (~40 ms), which would measure the kernel, not the tools.
kube_server._Handler.disable_nagle_algorithm = True

WRITES = ("POST", "PUT", "PATCH", "DELETE")


BASE_APPS = 2  # preview-pr's own: web and api


def _many_apps(apps: int) -> str:
    """An environment extending preview-pr with `apps - 2` more web-like apps, each routed."""
    lines = ["extends: preview-pr",
             "namespace:",
             "  quota: {cpu: '1000', memory: 1000Gi, pods: 1000}",
             "apps:"]
    names = [f"svc-{i:03d}" for i in range(1, apps - BASE_APPS + 1)]
    for name in names:
        lines += [f"  {name}:",
                  "    image: ${params.webImage}",
                  "    containers:",
                  f"      {name}:",
                  "        port: 80",
                  "        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 20m, memory: 32Mi}}",
                  "    service: {port: 80}"]
    lines.append("routes:")
    for name in names:
        lines += [f"  {name}:",
                  f"    hostnames: ['{name}-${{params.pr}}.pr.aphiria.com']",
                  '    gateway: {name: "${base.gatewayName}", namespace: "${base.gatewayNamespace}", '
                  'listener: "${base.webListener}"}',
                  f"    backend: {{app: {name}}}",
                  "    httpsRedirectFrom: ${base.webHttpListener}"]
    return "\n".join(lines) + "\n"


def load_plan(apps: int, workdir: Path) -> tuple[DeployPlan, str]:
    """preview-pr for PR 107 with pinned app images (or the generated `--apps` environment extending it);
    a compile error stops the bench (it would measure nothing real)."""
    from envspec.pipeline import compile_environment

    digest = "@sha256:" + "0" * 64
    params = ["pr=107", f"webImage=ghcr.io/aphiria/aphiria.com-web{digest}",
              f"apiImage=ghcr.io/aphiria/aphiria.com-api{digest}"]
    name, root = "preview-pr", ROOT
    if apps > BASE_APPS:
        root = workdir / "project"
        shutil.copytree(ROOT / "environments", root / "environments")
        if (ROOT / "components").is_dir():
            shutil.copytree(ROOT / "components", root / "components")
        name = "bench-apps"
        (root / "environments" / f"{name}.yaml").write_text(_many_apps(apps))
    compiled = compile_environment(name, root=root, params=params, sets=["cluster.context=fake"])
    assert compiled.plan.requires_pinned_images and compiled.plan.app_images, "preview-pr should demand pinned images"
    what = "preview-pr" if apps <= BASE_APPS else f"preview-pr + {apps - BASE_APPS} routed apps"
    return compiled.plan, f"{what} (compiled, pr=107, pinned app images)"


def environ_for(plan: DeployPlan) -> dict[str, str]:
    return {var: f"bench-value-{var.lower()}" for s in plan.secrets for var in s.data_from_env.values()}


def _counts(fake: FakeKube) -> tuple[int, int]:
    return len(fake.requests), sum(1 for r in fake.requests if r.method in WRITES)


def bench_envspec(plan: DeployPlan, workdir: Path, latency: float, workers: int) -> list[tuple[str, int, int, float]]:
    rows = []
    with FakeKube(latency=latency) as fake:
        _prepare(fake, plan)
        kc = fake.write_kubeconfig(workdir / "kc-envspec")
        _, api = load_target(kc, None)
        kube = Kube(api)
        options = ApplyOptions(environ=environ_for(plan), wait=WaitSettings(timeout=30, interval=0.05), check_helm=False,
                               workers=workers)
        for label in ("first apply", "no-op re-apply"):
            fake.reset_requests()
            start = time.perf_counter()
            apply_plan(kube, plan, options)
            elapsed = time.perf_counter() - start
            rows.append((f"envspec {label}", *_counts(fake), elapsed))
        kube.close()
    return rows


def bench_kubectl(plan: DeployPlan, workdir: Path, latency: float) -> list[tuple[str, int, int, float]]:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return [("kubectl (not installed)", 0, 0, 0.0)]
    secrets, redactor = build_secrets(plan, environ_for(plan))
    # Generated keys (e.g. app-db's password) get a value as on a first envspec apply.
    complete_secrets(secrets, pending_keys(plan, environ_for(plan)), lambda ns, name: None, redactor, generate=True)
    objects = desired_objects(plan, secrets, ApplySetRef.for_instance(plan.instance, plan.applyset_namespace).id)
    manifests = workdir / "rendered"
    manifests.mkdir()
    import yaml

    for i, obj in enumerate(objects):
        (manifests / f"{i:03d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj))
    rows = []
    with FakeKube(latency=latency) as fake:
        _prepare(fake, plan)
        kc = fake.write_kubeconfig(workdir / "kc-kubectl")
        argv = [kubectl, "--kubeconfig", str(kc), "apply", "--server-side", "--field-manager", "kubectl-bench",
                "--validate=false", "-f", str(manifests)]
        for label in ("first apply", "no-op re-apply"):
            fake.reset_requests()
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "KUBECACHEDIR": str(workdir / "kc-cache")})
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"kubectl failed: {done.stderr.strip()}")
            rows.append((f"kubectl --server-side {label}", *_counts(fake), elapsed))
    return rows


def _prepare(fake: FakeKube, plan: DeployPlan) -> None:
    """Namespaces a plan expects to exist already (e.g. the shared database's)."""
    for ns in plan.protected_namespaces:
        if fake.get("v1", "Namespace", ns) is None:
            fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}})
    # Not one the plan creates: apply refuses to adopt a namespace it did not create.
    if plan.applyset_namespace and plan.applyset_namespace not in plan.owned_namespaces \
            and fake.get("v1", "Namespace", plan.applyset_namespace) is None:
        fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plan.applyset_namespace},
                  "status": {"phase": "Active"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the best wall time is reported")
    parser.add_argument("--apps", type=int, default=BASE_APPS,
                        help="apps in the plan (more than 2: preview-pr plus generated routed apps)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="fake server delay per request")
    parser.add_argument("--workers", type=int, default=APPLY_WORKERS, help="envspec's concurrent writes per stage")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    best: dict[str, tuple[str, int, int, float]] = {}
    with tempfile.TemporaryDirectory() as planning:
        plan, source = load_plan(args.apps, Path(planning))
    for _ in range(args.repeat):
        # Interleaved, so both tools see the same machine load.
        with tempfile.TemporaryDirectory() as tmp:
            for row in bench_envspec(plan, Path(tmp), latency, args.workers) + bench_kubectl(plan, Path(tmp), latency):
                if row[0] not in best or row[3] < best[row[0]][3]:
                    best[row[0]] = row
    print(f"plan: {source}; {len(plan.objects)} rendered objects + {len(plan.secrets)} secrets; "
          f"{args.latency_ms:g} ms latency per request; {args.workers} envspec workers; best of {args.repeat}")
    print(f"{'run':<38} {'requests':>8} {'writes':>7} {'wall (s)':>9}")
    for name, total, writes, elapsed in best.values():
        print(f"{name:<38} {total:>8} {writes:>7} {elapsed:>9.3f}")
    for label in ("first apply", "no-op re-apply"):
        ours, theirs = best.get(f"envspec {label}"), best.get(f"kubectl --server-side {label}")
        if ours and theirs and theirs[1] and theirs[3]:
            print(f"ratio envspec/kubectl, {label}: wall {ours[3] / theirs[3]:.2f}x, "
                  f"requests {ours[1] / theirs[1]:.2f}x")


if __name__ == "__main__":
    main()
