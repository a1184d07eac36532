"""apply_plan against the fake API server, through the real kubernetes client."""

from __future__ import annotations

import copy
import os
import stat
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from envspec.errors import OperationError, SpecError
from envspec.kube.apply import ApplyOptions, apply_plan, stage_of
from envspec.kube.client import Kube, load_target
from envspec.kube.helm import HelmTarget
from envspec.kube.inventory import GROUP_KINDS_ANNOTATION, ID_LABEL, PART_OF_LABEL, applyset_id
from envspec.kube.plan import HelmChart
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    CANARY,
    DIGEST,
    ENV,
    INSTANCE,
    NS,
    deployment,
    fake_kube,
    fast_wait,
    job,
    kube,
    kubeconfig,
    labels,
    no_sleep_retry,
    objects,
    plan,
)

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def options(**overrides: Any) -> ApplyOptions:
    fields: dict[str, Any] = dict(environ=ENV, wait=fast_wait(), check_helm=False)
    fields.update(overrides)
    return ApplyOptions(**fields)


def writes(fake: FakeKube) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in WRITES]


def lists_per_kind(fake: FakeKube) -> Counter[str]:
    """LIST requests (GET on a collection) keyed by resource plural."""
    counts: Counter[str] = Counter()
    for r in fake.requests:
        if r.method != "GET" or not r.path.startswith(("/api/v1/", "/apis/")):
            continue
        parts = r.path.strip("/").split("/")
        core = parts[0] == "api"
        rest = parts[2:] if core else parts[3:]
        if rest and rest[0] == "namespaces" and len(rest) >= 3:
            rest = rest[2:]
        if len(rest) == 1:
            counts[rest[0]] += 1
    return counts


# --- first apply, no-op, change with prune ---------------------------------------------


def test_first_apply_creates_everything_in_stages_with_inventory(fake_kube: FakeKube, kube: Kube) -> None:
    result = apply_plan(kube, plan(), options())

    assert len(result.created) == len(objects()) + 1  # plus the Secret built from the environment
    created_kinds = [oid.split("/")[0] for oid in result.created]
    assert created_kinds.index("Namespace") < created_kinds.index("ConfigMap") < created_kinds.index("Deployment")
    assert created_kinds.index("Deployment") < created_kinds.index("HTTPRoute")
    patches = [r.path for r in fake_kube.requests if r.method == "PATCH"]
    assert all(r.query.get("fieldManager") == ["envspec"] for r in fake_kube.requests if r.method == "PATCH")
    assert patches.index("/apis/batch/v1/namespaces/preview-pr-107/jobs/db-create") < patches.index(
        "/apis/batch/v1/namespaces/preview-pr-107/jobs/db-migrate"
    )

    set_id = applyset_id("applyset-" + INSTANCE, "default")
    parent = fake_kube.get("v1", "Secret", "applyset-" + INSTANCE, "default")
    assert parent is not None and parent["metadata"]["labels"][ID_LABEL] == set_id
    kinds = parent["metadata"]["annotations"][GROUP_KINDS_ANNOTATION].split(",")
    assert kinds == sorted(kinds) and "Deployment.apps" in kinds and "HTTPRoute.gateway.networking.k8s.io" in kinds
    web = fake_kube.get("apps/v1", "Deployment", "web", NS)
    assert web is not None and web["metadata"]["labels"][PART_OF_LABEL] == set_id
    secret = fake_kube.get("v1", "Secret", "db-credentials", NS)
    assert secret is not None and set(secret["data"]) == {"password"}


def test_applyset_id_matches_kubectl_format() -> None:
    # kubectl: "applyset-" + base64url(sha256("<name>.<namespace>.<kind>.<group>")) unpadded + "-v1"
    import base64
    import hashlib

    raw = hashlib.sha256(b"applyset-preview-pr-107.default.Secret.").digest()
    expected = "applyset-" + base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-v1"
    assert applyset_id("applyset-preview-pr-107", "default") == expected
    assert "=" not in expected and len(expected) <= 63  # a valid label value


def test_noop_reapply_sends_no_writes_and_one_list_per_kind(fake_kube: FakeKube, kube: Kube) -> None:
    apply_plan(kube, plan(), options())
    fake_kube.reset_requests()

    result = apply_plan(kube, plan(), options())

    assert writes(fake_kube) == []
    assert not result.changed and len(result.unchanged) == len(objects()) + 1
    per_kind = lists_per_kind(fake_kube)
    assert per_kind and max(per_kind.values()) == 1, per_kind


def test_change_patches_only_what_differs_and_prunes_what_left(fake_kube: FakeKube, kube: Kube) -> None:
    apply_plan(kube, plan(), options())
    fake_kube.reset_requests()
    changed = objects()
    changed[2]["data"]["apiUri"] = "https://107.pr-api.aphiria.com"  # ConfigMap js-config
    changed = [o for o in changed if not (o["kind"] == "Service" and o["metadata"]["name"] == "api")]

    result = apply_plan(kube, plan(changed), options())

    assert result.updated == [f"ConfigMap/{NS}/js-config"]
    assert result.pruned == [f"Service/{NS}/api"]
    assert fake_kube.get("v1", "Service", "api", NS) is None
    assert fake_kube.get("v1", "ConfigMap", "js-config", NS)["data"]["apiUri"].endswith("aphiria.com")
    assert sorted(writes(fake_kube)) == sorted(
        [
            f"PATCH /api/v1/namespaces/{NS}/configmaps/js-config",
            f"DELETE /api/v1/namespaces/{NS}/services/api",
        ]
    )


def test_field_dropped_from_spec_is_removed(fake_kube: FakeKube, kube: Kube) -> None:
    first = objects()
    first[2]["data"]["extra"] = "x"
    apply_plan(kube, plan(first), options())
    fake_kube.reset_requests()

    result = apply_plan(kube, plan(), options())

    assert result.updated == [f"ConfigMap/{NS}/js-config"]
    assert "extra" not in fake_kube.get("v1", "ConfigMap", "js-config", NS)["data"]


# --- guards ------------------------------------------------------------------------------


def test_empty_render_is_refused_before_any_request(fake_kube: FakeKube, kube: Kube) -> None:
    with pytest.raises(SpecError, match="empty render"):
        apply_plan(kube, plan([]), options())
    assert fake_kube.requests == []


def test_prune_of_pvc_namespace_refused_without_dangerous_prune(fake_kube: FakeKube, kube: Kube) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": NS, "labels": labels()},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    apply_plan(kube, plan([*objects(), pvc]), options())
    fake_kube.reset_requests()

    with pytest.raises(SpecError, match=r"refusing to prune PersistentVolumeClaim/preview-pr-107/data.*--dangerous-prune"):
        apply_plan(kube, plan(), options())
    assert writes(fake_kube) == []  # refused before anything changed
    assert fake_kube.get("v1", "PersistentVolumeClaim", "data", NS) is not None

    result = apply_plan(kube, plan(), options(dangerous_prune=True))
    assert result.pruned == [f"PersistentVolumeClaim/{NS}/data"]


def test_prune_of_namespace_refused(fake_kube: FakeKube, kube: Kube) -> None:
    extra_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch", "labels": labels()}}
    apply_plan(kube, plan([*objects(), extra_ns]), options())
    with pytest.raises(SpecError, match="refusing to prune Namespace/scratch"):
        apply_plan(kube, plan(), options())
    assert fake_kube.get("v1", "Namespace", "scratch") is not None


def test_pruning_more_than_half_is_refused(fake_kube: FakeKube, kube: Kube) -> None:
    apply_plan(kube, plan(), options())
    fake_kube.reset_requests()
    only_namespace_and_config = objects()[:3]

    with pytest.raises(SpecError, match=r"refusing to prune \d+ of \d+ inventory objects \(more than half\)"):
        apply_plan(kube, plan(only_namespace_and_config), options())
    assert writes(fake_kube) == []


def test_objects_of_another_tool_or_applyset_are_never_pruned(fake_kube: FakeKube, kube: Kube) -> None:
    apply_plan(kube, plan(), options())
    set_id = applyset_id("applyset-" + INSTANCE, "default")
    # Same part-of label, but another tool manages it: must be left alone.
    fake_kube.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "helm-owned",
                "namespace": NS,
                "labels": {PART_OF_LABEL: set_id, "app.kubernetes.io/managed-by": "Helm"},
            },
        }
    )
    # Another ApplySet's member in the same namespace: never listed, never touched.
    fake_kube.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other-set", "namespace": NS, "labels": {PART_OF_LABEL: "applyset-other-v1"}},
        }
    )
    result = apply_plan(kube, plan(), options())

    assert result.pruned == []
    assert result.skipped_prune == [f"ConfigMap/{NS}/helm-owned"]
    assert fake_kube.get("v1", "ConfigMap", "helm-owned", NS) is not None
    assert fake_kube.get("v1", "ConfigMap", "other-set", NS) is not None


def test_parent_owned_by_another_tool_is_refused(fake_kube: FakeKube, kube: Kube) -> None:
    fake_kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "applyset-" + INSTANCE,
                "namespace": "default",
                "labels": {ID_LABEL: applyset_id("applyset-" + INSTANCE, "default")},
                "annotations": {"applyset.kubernetes.io/tooling": "kubectl/v1.32"},
            },
        }
    )
    with pytest.raises(SpecError, match="not an envspec ApplySet parent"):
        apply_plan(kube, plan(), options())
    assert writes(fake_kube) == []


def test_protected_namespace_in_render_is_refused(fake_kube: FakeKube, kube: Kube) -> None:
    bad = [*objects(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "postgres", "labels": labels()}}]
    with pytest.raises(SpecError, match="namespace postgres is protected"):
        apply_plan(kube, plan(bad), options())
    assert fake_kube.requests == []


def test_unpinned_images_are_all_reported_before_any_request(fake_kube: FakeKube, kube: Kube) -> None:
    objs = objects()
    objs[3] = deployment("web", image="ghcr.io/aphiria/web:latest")
    objs[3]["spec"]["template"]["spec"]["initContainers"] = [{"name": "copy", "image": "busybox@sha256:abc"}]
    with pytest.raises(SpecError) as info:
        apply_plan(kube, plan(objs), options())
    messages = [p.message for p in info.value.problems]
    assert any("Deployment/preview-pr-107/web: containers web" in m and ":latest" in m for m in messages)
    assert any("initContainers copy" in m for m in messages)  # truncated digest is not a pin
    assert fake_kube.requests == []


def test_missing_secret_variables_fail_before_any_request(fake_kube: FakeKube, kube: Kube) -> None:
    with pytest.raises(SpecError, match="ENVSPEC_TEST_DB_PASSWORD is not set"):
        apply_plan(kube, plan(), options(environ={}))
    assert fake_kube.requests == []


def test_production_needs_yes_or_confirmation(fake_kube: FakeKube, kube: Kube) -> None:
    prod = plan(requires_confirmation=True)
    with pytest.raises(SpecError, match="needs confirmation: pass --yes"):
        apply_plan(kube, prod, options(confirm=None))
    asked: list[str] = []
    with pytest.raises(SpecError, match="aborted"):
        apply_plan(kube, prod, options(confirm=lambda q: asked.append(q) or False, target_description="ctx fake"))
    assert asked and INSTANCE in asked[0] and "ctx fake" in asked[0]
    assert fake_kube.requests == []
    assert apply_plan(kube, prod, options(confirm=lambda q: True)).created
    assert apply_plan(kube, prod, options(yes=True)).unchanged


# --- conflicts ------------------------------------------------------------------------------


def test_conflict_names_field_and_manager_and_force_takes_over(fake_kube: FakeKube, kube: Kube) -> None:
    apply_plan(kube, plan(), options())
    # Someone scales by hand with kubectl (another field manager).
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
             "spec": {"replicas": 5}}
    kube.api_client  # noqa: B018
    fake_kube.reset_requests()
    from kubernetes.dynamic import DynamicClient

    DynamicClient(kube.api_client).server_side_apply(
        kube.resource("apps/v1", "Deployment"), body=other, field_manager="kubectl", force_conflicts=True
    )
    objs = objects()
    objs[3]["spec"]["replicas"] = 2
    with pytest.raises(OperationError) as info:
        apply_plan(kube, plan(objs), options())
    text = str(info.value)
    assert "Deployment/preview-pr-107/web" in text and ".spec.replicas" in text and '"kubectl"' in text
    assert "--force-conflicts" in text

    result = apply_plan(kube, plan(objs), options(force_conflicts=True))
    assert f"Deployment/{NS}/web" in result.updated
    assert fake_kube.get("apps/v1", "Deployment", "web", NS)["spec"]["replicas"] == 2


# --- jobs -------------------------------------------------------------------------------


def test_changed_job_is_replaced_and_ttl_removed_job_counts_as_done(fake_kube: FakeKube, kube: Kube) -> None:
    apply_plan(kube, plan(), options())
    first_uid = fake_kube.get("batch/v1", "Job", "db-migrate", NS)["metadata"]["uid"]
    # The TTL controller removes the finished db-create Job: not drift, not re-run.
    fake_kube.delete_direct("batch/v1", "Job", "db-create", NS)
    objs = objects()
    objs[8] = job("db-migrate", "phinx migrate && seed")  # template change: immutable
    fake_kube.reset_requests()

    result = apply_plan(kube, plan(objs), options())

    assert result.replaced == [f"Job/{NS}/db-migrate"]
    assert f"Job/{NS}/db-create" in result.unchanged
    assert fake_kube.get("batch/v1", "Job", "db-create", NS) is None  # not re-created
    new = fake_kube.get("batch/v1", "Job", "db-migrate", NS)
    assert new["metadata"]["uid"] != first_uid
    assert "seed" in new["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert any(r.method == "DELETE" and r.path.endswith("/jobs/db-migrate") for r in fake_kube.requests)


def test_jobs_run_in_order_each_waited_before_the_next(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Job")]
        seen: list[str] = []

        def sleep(_: float) -> None:
            # A tiny controller: complete whichever Job exists and is not complete yet.
            for name in ("db-create", "db-migrate"):
                live = fake.get("batch/v1", "Job", name, NS)
                if live is not None and not live.get("status"):
                    seen.append(name)
                    assert fake.get("batch/v1", "Job", "db-migrate", NS) is None or name == "db-migrate"
                    fake.set_status("batch/v1", "Job", name, NS, {"succeeded": 1, "conditions": [
                        {"type": "Complete", "status": "True"}]})

        settings = fast_wait()
        settings.sleep = sleep
        result = apply_plan(kube, plan(objs), options(wait=settings))
        kube.close()
    assert seen == ["db-create", "db-migrate"]
    assert result.created[-2:] == [f"Job/{NS}/db-create", f"Job/{NS}/db-migrate"]


def test_failed_job_reports_reason_and_log_tail(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Job")]

        def sleep(_: float) -> None:
            live = fake.get("batch/v1", "Job", "db-create", NS)
            if live is not None and not live.get("status"):
                fake.set_status("batch/v1", "Job", "db-create", NS, {"failed": 2, "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"}]})
                fake.add_pod(NS, "db-create-x1", labels={"job-name": "db-create"}, owner_kind="Job",
                             owner_name="db-create", phase="Failed")
                fake.set_pod_log(NS, "db-create-x1", "connecting\nFATAL: password authentication failed\n")

        settings = fast_wait()
        settings.sleep = sleep
        with pytest.raises(OperationError) as info:
            apply_plan(kube, plan(objs), options(wait=settings))
        kube.close()
    text = str(info.value)
    assert "Job/preview-pr-107/db-create failed" in text and "BackoffLimitExceeded" in text
    assert "FATAL: password authentication failed" in text
    assert fake.get("batch/v1", "Job", "db-migrate", NS) is None  # later Jobs never started


# --- readiness failures reported early -----------------------------------------------------


def test_quota_rejection_is_reported_with_its_reason_within_seconds(tmp_path: Path) -> None:
    with FakeKube(quota_enforcement=True) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = objects()
        web = objs[3]["spec"]["template"]["spec"]
        web["initContainers"] = [{"name": "db-migration", "image": "busybox" + DIGEST}]  # no limits
        settings = fast_wait(timeout=600)
        with pytest.raises(OperationError) as info:
            apply_plan(kube, plan(objs), options(wait=settings))
        kube.close()
    text = str(info.value)
    assert "Deployment/preview-pr-107/web failed" in text
    assert "failed quota: preview-quota" in text and "db-migration" in text


def test_image_pull_backoff_is_reported_early(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Deployment")]
        fake_pod_added: list[bool] = []

        def sleep(_: float) -> None:
            if not fake_pod_added:
                fake.add_pod(NS, "web-abc-1", labels={"app": "web"}, container_statuses=[
                    {"name": "web", "ready": False, "state": {"waiting": {
                        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "ghcr.io/aphiria/web"'}}}])
                fake_pod_added.append(True)

        settings = fast_wait(timeout=600)
        settings.sleep = sleep
        with pytest.raises(OperationError, match=r"web-abc-1 container web: ImagePullBackOff"):
            apply_plan(kube, plan(objs), options(wait=settings))
        kube.close()


def test_timeout_reports_each_pending_object(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Deployment")]
        with pytest.raises(OperationError) as info:
            apply_plan(kube, plan(objs), options(wait=fast_wait(timeout=0.05)))
        kube.close()
    text = str(info.value)
    assert "timed out" in text and "Deployment/preview-pr-107/web: " in text and "Deployment/preview-pr-107/api" in text


# --- transient faults and convergence ------------------------------------------------------


def test_transient_faults_are_retried(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _, api = load_target(kubeconfig, None)
    slept: list[float] = []
    from envspec.kube.retry import RetryPolicy

    kube = Kube(api, retry=RetryPolicy(attempts=3, sleep=slept.append), request_timeout=0.5)
    fake_kube.add_fault(method="PATCH", path_regex=r"/deployments/web$", status=429, times=1)
    fake_kube.add_fault(method="PATCH", path_regex=r"/configmaps/js-config$", status=500, times=2)
    fake_kube.add_fault(method="PATCH", path_regex=r"/services/api$", status=200, delay=1.0, times=1)

    result = apply_plan(kube, plan(), options())
    kube.close()

    assert len(result.created) == len(objects()) + 1
    assert kube.retry.retried == 4
    assert len(slept) == 4 and all(s <= 8.0 for s in slept)


def test_rerun_after_interrupted_apply_converges(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _, api = load_target(kubeconfig, None)
    kube = Kube(api, retry=no_sleep_retry(), request_timeout=2.0)
    fake_kube.add_fault(method="PATCH", path_regex=r"/deployments/api$", status=503, times=3)
    with pytest.raises(OperationError, match="Deployment/preview-pr-107/api"):
        apply_plan(kube, plan(), options())
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is not None  # half applied
    assert fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", NS) is None

    result = apply_plan(kube, plan(), options())
    assert f"Deployment/{NS}/api" in result.created and f"HTTPRoute/{NS}/web" in result.created
    assert f"Deployment/{NS}/web" in result.unchanged
    fake_kube.reset_requests()
    assert not apply_plan(kube, plan(), options()).changed
    assert writes(fake_kube) == []
    kube.close()


# --- CRDs, helm -----------------------------------------------------------------------------


def test_crd_is_established_before_its_custom_resources(fake_kube: FakeKube, kube: Kube) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "labels": labels()},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": NS,
                                                                              "labels": labels()}}
    assert stage_of(crd) == 1 and stage_of(widget) == 4
    result = apply_plan(kube, plan([*objects(), widget, crd]), options())
    assert f"Widget/{NS}/w" in result.created
    assert fake_kube.get("example.com/v1", "Widget", "w", NS) is not None


def _fake_helm(tmp_path: Path, exit_code: int = 0) -> tuple[Path, Path]:
    log = tmp_path / "helm-argv.txt"
    script = tmp_path / "bin" / "helm"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable}\nimport sys, json\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "vals = sys.argv[sys.argv.index('-f') + 1]\n"
        f"open({str(log)!r}, 'a').write(open(vals).read() + '\\n')\n"
        f"sys.stderr.write('Error: chart not found\\n') if {exit_code} else None\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script.parent, log


CHART = HelmChart(release="cert-manager", namespace="cert-manager", repository="https://charts.jetstack.io",
                  chart="cert-manager", version="v1.16.2", values={"crds": {"enabled": True}})


def test_helm_charts_are_installed_first_with_declared_version_and_values(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir, log = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    apply_plan(kube, plan(helm=[CHART]), options(check_helm=True, helm=HelmTarget(kubeconfig="/k", context="fake")))

    import json

    argv_line, values_line = log.read_text().splitlines()[:2]
    argv = json.loads(argv_line)
    assert argv[:5] == ["upgrade", "--install", "cert-manager", "cert-manager", "--repo"]
    for flag, value in [("--version", "v1.16.2"), ("--namespace", "cert-manager"), ("--kube-context", "fake"),
                        ("--kubeconfig", "/k")]:
        assert argv[argv.index(flag) + 1] == value
    assert "--wait" in argv and "--create-namespace" in argv
    assert json.loads(values_line) == {"crds": {"enabled": True}}


def test_missing_helm_is_a_clear_error_before_any_request(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SpecError, match=r"`helm` was not found on PATH; install helm 3"):
        apply_plan(kube, plan(helm=[CHART]), options(check_helm=True))
    assert fake_kube.requests == []


def test_failing_helm_reports_its_error(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir, _ = _fake_helm(tmp_path, exit_code=1)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(OperationError, match="helm upgrade --install cert-manager .* failed: Error: chart not found"):
        apply_plan(kube, plan(helm=[CHART]), options(check_helm=True))
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is None  # manifests come after charts


def test_dns_hook_runs_once_after_routes_are_ready(fake_kube: FakeKube, kube: Kube) -> None:
    calls: list[bool] = []

    def hook() -> None:
        route = fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", NS)
        calls.append(route is not None and bool(route.get("status")))

    apply_plan(kube, plan(), options(after_routes_ready=hook))
    assert calls == [True]


def test_secret_values_never_in_error_messages(fake_kube: FakeKube, kube: Kube) -> None:
    # The API echoes the value in its error message; envspec must scrub it.
    import base64

    encoded = base64.b64encode(CANARY.encode()).decode()
    fake_kube.add_fault(method="PATCH", path_regex=r"/secrets/db-credentials$", status=422, times=1,
                        body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
                              "reason": "Invalid", "message": f"data[password]: Invalid value: {encoded} / {CANARY}"})
    with pytest.raises(OperationError) as info:
        apply_plan(kube, plan(), options())
    assert CANARY not in str(info.value) and encoded not in str(info.value)
    assert "<masked>" in str(info.value)


def test_kubectl_computes_the_same_applyset_id_and_reads_our_parent(
    fake_kube: FakeKube, kube: Kube, kubeconfig: Path, tmp_path: Path  # noqa: F811
) -> None:
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is installed on these machines and in CI"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: default}\n")
    base = [kubectl, "--kubeconfig", str(kubeconfig), "apply", "--server-side", "--validate=false", "-n", "default",
            "--prune", "-f", str(tmp_path / "m")]
    env = {**os.environ, "KUBECTL_APPLYSET": "true", "KUBECACHEDIR": str(tmp_path / "cache")}
    done = subprocess.run([*base, "--applyset=secret/applyset-" + INSTANCE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    theirs = fake_kube.get("v1", "Secret", "applyset-" + INSTANCE, "default")["metadata"]["labels"][ID_LABEL]
    assert theirs == applyset_id("applyset-" + INSTANCE, "default")

    # On an envspec parent, kubectl recognises the ApplySet and refuses to take over another tool's set.
    fake_kube.delete_direct("v1", "Secret", "applyset-" + INSTANCE, "default")
    apply_plan(kube, plan(), options())
    refused = subprocess.run([*base, "--applyset=secret/applyset-" + INSTANCE], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and 'managed by tooling "envspec"' in refused.stderr
