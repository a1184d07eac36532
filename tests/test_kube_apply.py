"""apply_plan against the fake API server, through the real kubernetes client."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
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
from envspec.plan import HelmChart, RemoteManifest, SecretSource
from envspec.kube.wait import wait_ready
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


def writes(fake: FakeKube, *, leases: bool = False) -> list[str]:
    """Write requests; without those that take and release the instance's Lease unless `leases`."""
    return [f"{r.method} {r.path}" for r in fake.requests
            if r.method in WRITES and (leases or "/leases" not in r.path)]


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


def _replicaset(fake: FakeKube, deployment: str, name: str, *, current: bool = True) -> None:
    """A ReplicaSet owned (by UID) by the live Deployment, of its current revision or an older one."""
    live = fake.get("apps/v1", "Deployment", deployment, NS)
    revision = "1" if current else "0"
    fake.put({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": name, "namespace": NS, "labels": {"app": deployment, "pod-template-hash": name.rsplit("-", 1)[-1]},
        "annotations": {"deployment.kubernetes.io/revision": revision},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                             "uid": live["metadata"]["uid"], "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": deployment}},
                 "template": live["spec"]["template"]}})


def _mark_revision(fake: FakeKube, deployment: str, revision: str = "1") -> None:
    live = fake.get("apps/v1", "Deployment", deployment, NS)
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = revision
    fake.put(live)


def _waiting(reason: str, message: str = "") -> list[dict[str, Any]]:
    return [{"name": "web", "ready": False, "state": {"waiting": {"reason": reason, "message": message}}}]


def test_image_pull_backoff_is_reported_early(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Deployment")]
        fake_pod_added: list[bool] = []

        def sleep(_: float) -> None:
            if not fake_pod_added:
                _mark_revision(fake, "web")
                _replicaset(fake, "web", "web-abc")
                fake.add_pod(NS, "web-abc-1", labels={"app": "web"}, owner_kind="ReplicaSet", owner_name="web-abc",
                             container_statuses=_waiting("ImagePullBackOff", 'Back-off pulling image "ghcr.io/x"'))
                fake_pod_added.append(True)

        settings = fast_wait(timeout=600)
        settings.sleep = sleep
        with pytest.raises(OperationError, match=r"web-abc-1 container web: ImagePullBackOff"):
            apply_plan(kube, plan(objs), options(wait=settings))
        kube.close()


def test_crash_loop_log_tail_is_scrubbed_of_secret_values(tmp_path: Path) -> None:
    # CI tees apply's stderr into a log whose tail is posted on the pull request.
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Deployment")]
        lines: list[str] = []

        def sleep(_: float) -> None:
            if fake.get("v1", "Pod", "web-abc-1", NS) is None:
                _mark_revision(fake, "web")
                _replicaset(fake, "web", "web-abc")
                fake.add_pod(NS, "web-abc-1", labels={"app": "web"}, owner_kind="ReplicaSet", owner_name="web-abc",
                             container_statuses=_waiting("CrashLoopBackOff", "back-off 10s restarting"))
                fake.set_pod_log(NS, "web-abc-1", f"booting\nDB_PASSWORD={CANARY}\nFATAL: cannot connect\n")

        settings = fast_wait(timeout=600)
        settings.sleep = sleep
        with pytest.raises(OperationError) as info:
            apply_plan(kube, plan(objs), options(wait=settings, report=lines.append))
        kube.close()
    text = "\n".join([*lines, str(info.value), *(p.message for p in info.value.problems)])
    assert "FATAL: cannot connect" in text and "DB_PASSWORD=<masked>" in text  # the tail was read and shown
    assert any("DB_PASSWORD=<masked>" in line for line in lines)  # in the progress line too, not only the error
    assert CANARY not in text


def test_stale_events_and_other_replicasets_do_not_fail_a_good_rollout(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Deployment")]
        polls: list[int] = []

        def sleep(_: float) -> None:
            polls.append(1)
            if len(polls) == 1:
                _mark_revision(fake, "web")
                _replicaset(fake, "web", "web-new")
                _replicaset(fake, "web", "web-old", current=False)
                # An hour-old quota rejection of the current ReplicaSet (fixed since).
                fake.add_event(NS, involved_kind="ReplicaSet", involved_name="web-new", reason="FailedCreate",
                               message="pods forbidden: exceeded quota")
                # Another Deployment's ReplicaSet shares the `web-` prefix, and its pod crash-loops.
                fake.add_pod(NS, "web-static-7d9-1", labels={"app": "web-static"}, owner_kind="ReplicaSet",
                             owner_name="web-static-7d9", container_statuses=_waiting("CrashLoopBackOff"))
                # The old ReplicaSet's pod crash-loops while the new rollout replaces it.
                fake.add_pod(NS, "web-old-1", labels={"app": "web"}, owner_kind="ReplicaSet", owner_name="web-old",
                             container_statuses=_waiting("CrashLoopBackOff"))
            elif len(polls) == 3:
                for name in ("web", "api"):
                    fake.set_status("apps/v1", "Deployment", name, NS, {
                        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})

        settings = fast_wait(timeout=600)
        settings.sleep = sleep
        settings.now = lambda: datetime(2025, 1, 1, 1, 0, tzinfo=timezone.utc)  # the fake dates events 00:00
        result = apply_plan(kube, plan(objs), options(wait=settings))
        assert [r.id for r in result.readiness if r.state == "ready"] == [f"Deployment/{NS}/web", f"Deployment/{NS}/api"]

        # The same event, fresh: reported at once.
        fake.set_status("apps/v1", "Deployment", "web", NS, {})
        settings.now = lambda: datetime(2025, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
        settings.sleep = lambda _: None
        with pytest.raises(OperationError, match="FailedCreate: pods forbidden: exceeded quota"):
            wait_ready(kube, [fake.get("apps/v1", "Deployment", "web", NS)], settings=settings)
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
        "if sys.argv[1] in ('list', 'get'): print('[]' if sys.argv[1] == 'list' else 'null'); sys.exit(0)\n"
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


def test_helm_charts_are_installed_after_stage_1_with_declared_version_and_values(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir, log = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    lines: list[str] = []
    apply_plan(kube, plan(helm=[CHART]), options(check_helm=True, helm=HelmTarget(kubeconfig="/k", context="fake"),
                                                 report=lines.append))

    import json

    argv_line, values_line = log.read_text().splitlines()[:2]
    argv = json.loads(argv_line)
    assert argv[:6] == ["upgrade", "--install", "cert-manager", "cert-manager", "--repo", "https://charts.jetstack.io"]
    for flag, value in [("--version", "v1.16.2"), ("--namespace", "cert-manager"), ("--kube-context", "fake"),
                        ("--kubeconfig", "/k")]:
        assert argv[argv.index(flag) + 1] == value
    assert "--wait" in argv and "--create-namespace" in argv
    assert json.loads(values_line) == {"crds": {"enabled": True}}
    helm_at = next(i for i, line in enumerate(lines) if line.startswith("helm "))
    assert lines.index(f"created Namespace/{NS}") < helm_at < lines.index(f"created ConfigMap/{NS}/js-config")


def _runner(answers: dict[str, Any], calls: list[list[str]]) -> Any:
    """A helm runner answering `list` and `get values` from `answers`; records every argv."""
    import json
    import subprocess

    def run(argv: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        verb = argv[1]
        out = json.dumps(answers.get(verb)) if verb in answers else ""
        return subprocess.CompletedProcess(list(argv), 0, out, "")

    return run


def test_helm_oci_chart_is_named_by_reference_without_repo() -> None:
    from envspec.kube.helm import helm_argv

    oci = HelmChart(release="nginx-gateway", namespace="nginx-gateway", repository="oci://ghcr.io/nginx/charts/",
                    chart="nginx-gateway-fabric", version="2.2.1")
    argv = helm_argv("helm", oci, "/v.yaml", HelmTarget())
    assert argv[:5] == ["helm", "upgrade", "--install", "nginx-gateway", "oci://ghcr.io/nginx/charts/nginx-gateway-fabric"]
    assert "--repo" not in argv and argv[argv.index("--version") + 1] == "2.2.1"


def test_helm_release_already_current_is_not_upgraded() -> None:
    from envspec.kube.helm import install_charts

    deployed = [{"name": "cert-manager", "namespace": "cert-manager", "status": "deployed",
                 "chart": "cert-manager-v1.16.2", "revision": "3"}]
    calls: list[list[str]] = []
    lines: list[str] = []
    install_charts([CHART], HelmTarget(), helm="helm", report=lines.append,
                   runner=_runner({"list": deployed, "get": {"crds": {"enabled": True}}}, calls))
    assert [c[1] for c in calls] == ["list", "get"] and lines == [
        "helm    cert-manager/cert-manager cert-manager@v1.16.2 (unchanged)"]

    for answers in (
        {"list": deployed, "get": {"crds": {"enabled": False}}},  # values changed
        {"list": [{**deployed[0], "chart": "cert-manager-v1.15.0"}], "get": {"crds": {"enabled": True}}},  # version
        {"list": [{**deployed[0], "status": "failed"}], "get": {"crds": {"enabled": True}}},  # a failed upgrade
        {"list": []},  # not installed
    ):
        calls.clear()
        install_charts([CHART], HelmTarget(), helm="helm", runner=_runner(answers, calls))
        assert calls[-1][1:3] == ["upgrade", "--install"], answers


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


def test_dns_hook_runs_once_after_routes_are_ready_with_the_time_left(fake_kube: FakeKube, kube: Kube) -> None:
    calls: list[tuple[bool, float]] = []
    lines: list[str] = []
    now = [100.0]
    settings = fast_wait(timeout=60)
    settings.clock = lambda: now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    settings.sleep = sleep

    def hook(*, remaining: float, report: Any) -> None:
        route = fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", NS)
        calls.append((route is not None and bool(route.get("status")), remaining))
        report(f"dns sync would use {CANARY}")

    now_at_start = now[0]
    apply_plan(kube, plan(), options(after_routes_ready=hook, wait=settings, report=lines.append))
    assert [c[0] for c in calls] == [True]
    assert calls[0][1] == 60 - (now[0] - now_at_start)  # what is left of --timeout, not all of it again
    assert "dns sync would use <masked>" in lines


def test_operation_errors_keep_their_type_when_scrubbed(fake_kube: FakeKube, kube: Kube) -> None:
    from envspec.cloud.digitalocean import DigitalOceanAPIError

    def hook(*, remaining: float, report: Any) -> None:
        raise DigitalOceanAPIError(f"POST /v2/domains: 500 echoing {CANARY}", status=500, error_id="e-1")

    with pytest.raises(DigitalOceanAPIError) as info:
        apply_plan(kube, plan(), options(after_routes_ready=hook))
    assert info.value.status == 500 and info.value.error_id == "e-1" and info.value.exit_code == 3
    assert CANARY not in str(info.value) and "echoing <masked>" in info.value.problems[0].message


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


# --- parent first, generated secrets, remote manifests ---------------------------------------


def test_parent_is_written_before_any_member_on_a_first_apply(fake_kube: FakeKube, kube: Kube) -> None:
    # The parent lives in the namespace the plan creates: that namespace goes in bare, then the parent.
    fake_kube.add_fault(method="PATCH", path_regex=f"/namespaces/{NS}/secrets/applyset-{INSTANCE}$", status=403)
    with pytest.raises(OperationError, match="HTTP 403"):
        apply_plan(kube, plan(applyset_namespace=NS), options())
    assert writes(fake_kube) == ["POST /api/v1/namespaces", f"PATCH /api/v1/namespaces/{NS}/secrets/applyset-{INSTANCE}"]
    assert PART_OF_LABEL not in fake_kube.get("v1", "Namespace", NS)["metadata"]["labels"]  # not a member yet

    result = apply_plan(kube, plan(applyset_namespace=NS), options())
    assert f"Namespace/{NS}" in result.updated  # the bare namespace of the first run, known as its own
    parent = fake_kube.get("v1", "Secret", "applyset-" + INSTANCE, NS)
    assert parent["metadata"]["annotations"]["envspec.dev/created-namespaces"] == NS
    set_id = applyset_id("applyset-" + INSTANCE, NS)
    assert fake_kube.get("v1", "Namespace", NS)["metadata"]["labels"][PART_OF_LABEL] == set_id
    assert fake_kube.get("v1", "Secret", "applyset-" + INSTANCE, NS)["metadata"]["labels"][ID_LABEL] == set_id
    fake_kube.reset_requests()
    assert not apply_plan(kube, plan(applyset_namespace=NS), options()).changed
    assert writes(fake_kube) == []


def _generated_plan() -> Any:
    sources = [SecretSource(name="db-credentials", namespace=NS, data_from_env={"password": "ENVSPEC_TEST_DB_PASSWORD"}),
               SecretSource(name="app-db", namespace=NS, generate=("password",))]
    return plan(secrets=sources)


def test_generated_secret_keys_are_made_once_and_kept(fake_kube: FakeKube, kube: Kube) -> None:
    import base64

    lines: list[str] = []
    apply_plan(kube, _generated_plan(), options(report=lines.append))
    first = fake_kube.get("v1", "Secret", "app-db", NS)["data"]["password"]
    value = base64.b64decode(first).decode()
    assert len(value) == 32 and all(c.isalnum() or c in "-_" for c in value)
    fake_kube.reset_requests()

    again = apply_plan(kube, _generated_plan(), options(report=lines.append))
    assert f"Secret/{NS}/app-db" in again.unchanged and writes(fake_kube) == []
    assert fake_kube.get("v1", "Secret", "app-db", NS)["data"]["password"] == first

    from envspec.kube.diff import diff_live

    changes = diff_live(kube, _generated_plan(), environ=ENV)
    assert not changes.has_changes  # present means unchanged: diff never invents a value
    assert value not in "\n".join(lines) and first not in "\n".join(lines)


def test_generated_value_in_a_log_tail_is_scrubbed(tmp_path: Path) -> None:
    import base64

    with FakeKube(auto_ready=False) as fake:
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Deployment")]
        lines: list[str] = []

        def sleep(_: float) -> None:
            if fake.get("v1", "Pod", "web-abc-1", NS) is None:
                password = base64.b64decode(fake.get("v1", "Secret", "app-db", NS)["data"]["password"]).decode()
                _mark_revision(fake, "web")
                _replicaset(fake, "web", "web-abc")
                fake.add_pod(NS, "web-abc-1", labels={"app": "web"}, owner_kind="ReplicaSet", owner_name="web-abc",
                             container_statuses=_waiting("CrashLoopBackOff"))
                fake.set_pod_log(NS, "web-abc-1", f"connecting with {password}\n")

        settings = fast_wait(timeout=600)
        settings.sleep = sleep
        with pytest.raises(OperationError) as info:
            apply_plan(kube, plan(objs, secrets=_generated_plan().secrets), options(wait=settings, report=lines.append))
        password = base64.b64decode(fake.get("v1", "Secret", "app-db", NS)["data"]["password"]).decode()
        kube.close()
    text = "\n".join([*lines, str(info.value)])
    assert "connecting with <masked>" in text and password not in text


CRD_URL = "https://example.com/gateway-api/v1.4.0/standard-install.yaml"
CRD_YAML = """---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com, creationTimestamp: null}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget}
  versions: [{name: v1, served: true, storage: true}]
status: {acceptedNames: {kind: "", plural: ""}, storedVersions: null}
"""


def _serve(content: str, fetched: list[str]) -> Any:
    def fetch(url: str, timeout: float) -> bytes:
        fetched.append(url)
        return content.encode()

    return fetch


def test_remote_manifests_go_in_stage_1_before_helm_and_their_kinds(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir, _ = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": NS,
                                                                              "labels": labels()}}
    digest = hashlib.sha256(CRD_YAML.encode()).hexdigest()
    fetched: list[str] = []
    lines: list[str] = []
    p = plan([*objects(), widget], helm=[CHART], remote_manifests=[RemoteManifest(CRD_URL, digest)])
    result = apply_plan(kube, p, options(fetch=_serve(CRD_YAML, fetched), cache_dir=None, check_helm=True,
                                         report=lines.append))

    assert fetched == [CRD_URL]
    crd = fake_kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    assert crd["metadata"]["labels"]["envspec.dev/instance"] == INSTANCE and PART_OF_LABEL in crd["metadata"]["labels"]
    assert f"Widget/{NS}/w" in result.created
    created_crd = lines.index("created CustomResourceDefinition/widgets.example.com")
    helm_at = next(i for i, line in enumerate(lines) if line.startswith("helm "))
    assert lines[0].startswith("stage 1") and created_crd < helm_at < lines.index(f"created Widget/{NS}/w")

    fake_kube.reset_requests()
    assert not apply_plan(kube, p, options(fetch=_serve(CRD_YAML, fetched), cache_dir=None)).changed
    assert writes(fake_kube) == []


def test_remote_manifest_with_another_digest_or_scheme_is_refused_before_any_write(
    fake_kube: FakeKube, kube: Kube
) -> None:
    fetched: list[str] = []
    pinned = plan(remote_manifests=[RemoteManifest(CRD_URL, "0" * 64)])
    with pytest.raises(SpecError, match=r"has sha256 [0-9a-f]{64}, but the spec pins 0000"):
        apply_plan(kube, pinned, options(fetch=_serve(CRD_YAML, fetched), cache_dir=None))
    plain_http = plan(remote_manifests=[RemoteManifest("http://example.com/crds.yaml")])
    with pytest.raises(SpecError, match="not an https URL"):
        apply_plan(kube, plain_http, options(fetch=_serve(CRD_YAML, fetched), cache_dir=None))
    assert fetched == [CRD_URL] and writes(fake_kube) == []

    def unreachable(url: str, timeout: float) -> bytes:
        import urllib.error

        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(OperationError, match=f"cannot fetch manifest {CRD_URL}: Name or service not known"):
        apply_plan(kube, plan(remote_manifests=[RemoteManifest(CRD_URL)]), options(fetch=unreachable, cache_dir=None))
    assert writes(fake_kube) == []


def test_manifest_cache_is_used_and_rechecked(tmp_path: Path) -> None:
    from envspec.kube.remote import fetch_manifest

    fetched: list[str] = []
    digest = hashlib.sha256(CRD_YAML.encode()).hexdigest()
    first = fetch_manifest(RemoteManifest(CRD_URL, digest), fetch=_serve(CRD_YAML, fetched), cache_dir=tmp_path)
    again = fetch_manifest(RemoteManifest(CRD_URL, digest), fetch=_serve(CRD_YAML, fetched), cache_dir=tmp_path)
    assert first == again == CRD_YAML.encode() and fetched == [CRD_URL]
    # A cached copy that no longer matches the pin is fetched again (and the fresh one checked).
    with pytest.raises(SpecError, match="but the spec pins"):
        fetch_manifest(RemoteManifest(CRD_URL, "1" * 64), fetch=_serve(CRD_YAML, fetched), cache_dir=tmp_path)
    assert fetched == [CRD_URL, CRD_URL]
