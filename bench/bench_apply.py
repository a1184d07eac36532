"""How many requests and how long: `envspec apply` vs `kubectl apply --server-side`.

Runs against the in-repo fake API server (tests/fakes/kube_server.py) on
loopback, each tool on a fresh server:

* envspec: first apply of the plan, then a no-op re-apply;
* kubectl: `kubectl apply --server-side --validate=false -f DIR` of the same
  rendered objects (plus the Secrets envspec builds), twice.

The plan is the repository's preview-pr for PR 107, compiled by
`envspec.pipeline.compile_environment` with the app images pinned by digest
(as the deploy workflow passes them), so apply runs every preflight check,
including the pinned-image one. Usage: `python bench/bench_apply.py [--repeat N]`.
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

from envspec.kube.apply import ApplyOptions, apply_plan  # noqa: E402
from envspec.kube.client import Kube, load_target  # noqa: E402
from envspec.kube.inventory import ApplySetRef  # noqa: E402
from envspec.kube.plan import DeployPlan  # noqa: E402
from envspec.kube.secrets import build_secrets, complete_secrets, pending_keys  # noqa: E402
from envspec.kube.stages import desired_objects  # noqa: E402
from envspec.kube.wait import WaitSettings  # noqa: E402
from tests.fakes import kube_server  # noqa: E402
from tests.fakes.kube_server import FakeKube  # noqa: E402

# The fake sends headers and body separately; without TCP_NODELAY every keep-alive response
# waits for a delayed ACK (~40 ms), which would measure the kernel, not the tools.
kube_server._Handler.disable_nagle_algorithm = True

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def load_plan() -> tuple[DeployPlan, str]:
    """preview-pr for PR 107 with pinned app images; a compile error stops the bench (it would measure nothing real)."""
    from envspec.pipeline import compile_environment

    digest = "@sha256:" + "0" * 64
    params = ["pr=107", f"webImage=ghcr.io/aphiria/aphiria.com-web{digest}",
              f"apiImage=ghcr.io/aphiria/aphiria.com-api{digest}"]
    compiled = compile_environment("preview-pr", root=ROOT, params=params, sets=["cluster.context=fake"])
    assert compiled.plan.requires_pinned_images and compiled.plan.app_images, "preview-pr should demand pinned images"
    return compiled.plan, "preview-pr (compiled, pr=107, pinned app images)"


def environ_for(plan: DeployPlan) -> dict[str, str]:
    return {var: f"bench-value-{var.lower()}" for s in plan.secrets for var in s.data_from_env.values()}


def _counts(fake: FakeKube) -> tuple[int, int]:
    return len(fake.requests), sum(1 for r in fake.requests if r.method in WRITES)


def bench_envspec(plan: DeployPlan, workdir: Path) -> list[tuple[str, int, int, float]]:
    rows = []
    with FakeKube() as fake:
        _prepare(fake, plan)
        kc = fake.write_kubeconfig(workdir / "kc-envspec")
        _, api = load_target(kc, None)
        kube = Kube(api)
        options = ApplyOptions(environ=environ_for(plan), wait=WaitSettings(timeout=30, interval=0.05), check_helm=False)
        for label in ("first apply", "no-op re-apply"):
            fake.reset_requests()
            start = time.perf_counter()
            apply_plan(kube, plan, options)
            elapsed = time.perf_counter() - start
            rows.append((f"envspec {label}", *_counts(fake), elapsed))
        kube.close()
    return rows


def bench_kubectl(plan: DeployPlan, workdir: Path) -> list[tuple[str, int, int, float]]:
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
    with FakeKube() as fake:
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
    args = parser.parse_args()
    plan, source = load_plan()
    best: dict[str, tuple[str, int, int, float]] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            for row in bench_envspec(plan, Path(tmp)) + bench_kubectl(plan, Path(tmp)):
                if row[0] not in best or row[3] < best[row[0]][3]:
                    best[row[0]] = row
    print(f"plan: {source}; {len(plan.objects)} rendered objects + {len(plan.secrets)} secrets; best of {args.repeat}")
    print(f"{'run':<38} {'requests':>8} {'writes':>7} {'wall (s)':>9}")
    for name, total, writes, elapsed in best.values():
        print(f"{name:<38} {total:>8} {writes:>7} {elapsed:>9.3f}")


if __name__ == "__main__":
    main()
