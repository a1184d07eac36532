"""destroy_instance and list_instances against the fake server."""

from __future__ import annotations

from pathlib import Path

import pytest

from envspec.errors import OperationError, SpecError
from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube, load_target
from envspec.kube.destroy import DestroyOptions, destroy_instance, drop_database_job, list_instances
from envspec.kube.plan import DatabaseDrop
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401
    ENV,
    INSTANCE,
    NS,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    no_sleep_retry,
    plan,
    seed_database_namespace,
)


def _apply(kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))


def _options(**kw: object) -> DestroyOptions:
    fields: dict = dict(grace_seconds=0.05, wait=fast_wait())
    fields.update(kw)
    return DestroyOptions(**fields)


def test_destroy_removes_everything_drops_database_and_parent(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    _apply(kube)
    assert [i.instance for i in list_instances(kube, "preview-pr")] == [INSTANCE]

    result = destroy_instance(kube, plan(), _options())

    assert result.namespaces == [NS] and result.database_dropped == "preview_pr_107"
    assert f"Deployment/{NS}/web" in result.deleted
    assert fake_kube.get("v1", "Namespace", NS) is None
    assert fake_kube.get("v1", "Secret", "applyset-" + INSTANCE, "default") is None
    assert fake_kube.list("v1", "Secret", label_selector=f"envspec.dev/instance={INSTANCE}") == []
    # the drop Job ran in the database's namespace and was cleaned up after it succeeded
    posts = [r for r in fake_kube.requests if r.method == "PATCH" and "/namespaces/postgres/jobs/" in r.path]
    assert len(posts) == 1
    job_body = posts[0].body
    script = job_body["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert 'DROP DATABASE IF EXISTS "preview_pr_107" WITH (FORCE)' in script and "pg_database" in script
    assert fake_kube.list("batch/v1", "Job", namespace="postgres") == []
    assert list_instances(kube, "preview-pr") == []


def test_drop_job_takes_credentials_from_the_secret_never_inline() -> None:
    job = drop_database_job(plan().database_drop, plan())
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-admin", "key": "password"}
    assert env["PGUSER"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-admin", "key": "username"}
    assert env["PGHOST"]["value"] == "postgres.postgres.svc.cluster.local"  # fully qualified
    assert "value" not in env["PGPASSWORD"]
    assert container["resources"]["limits"]  # quota-safe
    assert len(job["metadata"]["name"]) <= 63


@pytest.mark.parametrize("name", ['x"; DROP TABLE users; --', "Preview", "a" * 64, "", "db-1"])
def test_unsafe_database_names_are_refused(name: str) -> None:
    drop = DatabaseDrop(database=name, host="h", port=5432, image="i", namespace="n", user_secret="s")
    with pytest.raises(SpecError, match="refusing to drop database"):
        drop_database_job(drop, plan())


def test_stuck_namespace_is_force_finalized_after_grace(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    _apply(kube)
    fake_kube.stuck_namespaces.add(NS)
    lines: list[str] = []

    result = destroy_instance(kube, plan(), _options(report=lines.append))

    assert result.finalized == [NS]
    assert fake_kube.get("v1", "Namespace", NS) is None
    assert any(r.method == "PUT" and r.path == f"/api/v1/namespaces/{NS}/finalize" for r in fake_kube.requests)
    assert any("stuck in Terminating" in line for line in lines)


def test_destroy_of_nothing_exits_cleanly_and_says_so(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    lines: list[str] = []
    result = destroy_instance(kube, plan(), _options(report=lines.append))
    assert result.nothing and lines == [f"nothing to destroy: no trace of {INSTANCE} on this cluster"]
    assert [r for r in fake_kube.requests if r.method != "GET"] == []


def test_destroy_twice_is_idempotent(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    _apply(kube)
    destroy_instance(kube, plan(), _options())
    assert destroy_instance(kube, plan(), _options()).nothing


def test_dry_run_deletes_nothing(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    _apply(kube)
    fake_kube.reset_requests()
    lines: list[str] = []
    destroy_instance(kube, plan(), _options(dry_run=True, report=lines.append))
    assert [r for r in fake_kube.requests if r.method != "GET"] == []
    assert f"would delete Deployment/{NS}/web" in lines and f"would delete Namespace/{NS}" in lines
    assert any("would drop database preview_pr_107" in line for line in lines)


def test_failed_database_drop_keeps_the_parent_for_a_rerun(tmp_path: Path) -> None:
    with FakeKube(auto_ready=True) as fake:
        seed_database_namespace(fake)
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        _apply(kube)
        fake.auto_ready = False

        def sleep(_: float) -> None:
            for live in fake.list("batch/v1", "Job", namespace="postgres"):
                name = live["metadata"]["name"]
                if not live.get("status"):
                    fake.set_status("batch/v1", "Job", name, "postgres", {"failed": 3, "conditions": [
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
                    fake.add_pod("postgres", name + "-p", labels={"job-name": name}, owner_kind="Job",
                                 owner_name=name, phase="Failed")
                    fake.set_pod_log("postgres", name + "-p", "database preview_pr_107 still exists\n")

        settings = fast_wait()
        settings.sleep = sleep
        with pytest.raises(OperationError) as info:
            destroy_instance(kube, plan(), _options(wait=settings))
        kube.close()
        text = str(info.value)
        assert "database preview_pr_107 still exists" in text and "NOT verified dropped" in text
        assert fake.get("v1", "Secret", "applyset-" + INSTANCE, "default") is not None


def test_leftovers_fail_the_destroy(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    _apply(kube)
    # Something labelled with the instance outside the inventory, in a namespace destroy doesn't own.
    fake_kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "stray", "namespace": "default", "labels": {"envspec.dev/instance": INSTANCE}}})
    with pytest.raises(OperationError, match="left objects behind: ConfigMap/default/stray"):
        destroy_instance(kube, plan(), _options())
    assert fake_kube.get("v1", "Secret", "applyset-" + INSTANCE, "default") is not None


def test_parent_inside_the_owned_namespace_survives_a_failed_drop(tmp_path: Path) -> None:
    # The compiled preview-pr plan keeps its ApplySet parent in the PR namespace itself.
    in_ns = plan(applyset_namespace=NS)
    with FakeKube() as fake:
        seed_database_namespace(fake)
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        apply_plan(kube, in_ns, ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))
        fake.add_fault(method="PATCH", path_regex="/namespaces/postgres/jobs/", status=403, times=1)
        with pytest.raises(OperationError, match="apply failed"):
            destroy_instance(kube, in_ns, _options())
        assert fake.get("v1", "Secret", "applyset-" + INSTANCE, NS) is not None  # namespace not deleted yet

        again = destroy_instance(kube, in_ns, _options())
        kube.close()
    assert not again.nothing and again.database_dropped == "preview_pr_107"
    assert again.namespaces == [NS]


def test_strays_without_a_parent_are_still_found_and_deleted(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    fake_kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "stray", "namespace": "default",
        "labels": {"envspec.dev/instance": INSTANCE, "app.kubernetes.io/managed-by": "envspec"}}})
    result = destroy_instance(kube, plan(), _options())
    assert not result.nothing and result.deleted == ["ConfigMap/default/stray"]
    assert result.database_dropped == "preview_pr_107"
    assert fake_kube.get("v1", "ConfigMap", "stray", "default") is None
