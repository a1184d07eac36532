"""destroy_instance and list_instances against the fake server."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from envspec.errors import OperationError, SpecError
from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube, load_target
from envspec.components.database.lifecycle import drop_database_job, drop_script
from envspec.kube.destroy import DestroyOptions, destroy_instance, list_instances
from envspec.plan import DatabaseDrop
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401
    CANARY,
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
    fields: dict = dict(grace_seconds=0.05, wait=fast_wait(), environ=ENV)
    fields.update(kw)
    return DestroyOptions(**fields)


def _drop_job_prints(fake: FakeKube, output: str, lines: list[str]) -> Callable[[str], None]:
    """A report callback that gives the drop Job's pod `output` as its log, as psql in the Job would print."""

    def report(line: str) -> None:
        lines.append(line)
        if line.startswith("running Job/postgres/"):
            job = line.split()[1].rsplit("/", 1)[-1]
            for pod in fake.list("v1", "Pod", namespace="postgres", label_selector=f"job-name={job}"):
                fake.set_pod_log("postgres", pod["metadata"]["name"], output)

    return report


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


def test_destroy_of_nothing_still_runs_the_drop_and_says_nothing_when_it_was_absent(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    seed_database_namespace(fake_kube)
    lines: list[str] = []
    result = destroy_instance(kube, plan(), _options(report=_drop_job_prints(fake_kube, "absent\n", lines)))
    assert result.nothing and result.database_outcome == "absent" and result.database_dropped is None
    assert lines[-1] == f"nothing to destroy: no trace of {INSTANCE} on this cluster"
    assert "database preview_pr_107 was already absent (checked in pg_database)" in lines
    writes = [(r.method, r.path) for r in fake_kube.requests if r.method != "GET" and "/leases" not in r.path]
    assert [m for m, _ in writes] == ["PATCH", "DELETE"] and all("/namespaces/postgres/jobs/" in p for _, p in writes)


def test_database_left_behind_by_a_deleted_namespace_is_dropped(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    # The seed project's failure: the namespace and the parent are gone, the database is not.
    seed_database_namespace(fake_kube)
    lines: list[str] = []
    result = destroy_instance(kube, plan(), _options(report=_drop_job_prints(fake_kube, "dropped\n", lines)))
    assert not result.nothing and result.database_dropped == "preview_pr_107" and result.database_outcome == "dropped"
    assert "dropped database preview_pr_107 (verified absent from pg_database)" in lines
    assert not any(line.startswith("nothing to destroy") for line in lines)
    assert fake_kube.list("batch/v1", "Job", namespace="postgres") == []


def test_unreadable_drop_output_is_never_reported_as_nothing(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)  # the fake's Job succeeds, its pod prints nothing
    result = destroy_instance(kube, plan(), _options())
    assert not result.nothing and result.database_outcome == "gone" and result.database_dropped == "preview_pr_107"


def test_drop_needs_the_database_namespace(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    with pytest.raises(OperationError, match="namespace postgres for the drop Job does not exist") as info:
        destroy_instance(kube, plan(), _options())
    assert info.value.exit_code == 3 and "NOT verified dropped" in str(info.value)


def test_destroy_twice_is_idempotent(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    _apply(kube)
    first: list[str] = []
    assert not destroy_instance(kube, plan(), _options(report=_drop_job_prints(fake_kube, "dropped\n", first))).nothing
    second: list[str] = []
    assert destroy_instance(kube, plan(), _options(report=_drop_job_prints(fake_kube, "absent\n", second))).nothing


def test_namespace_not_labelled_for_this_instance_is_never_deleted(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    # Someone's own namespace that happens to carry the instance's name, and one of another instance.
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"team": "docs"}},
                   "status": {"phase": "Active"}})
    other = plan(owned_namespaces=[NS, "preview-pr-108"])
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "preview-pr-108", "labels": {
        "app.kubernetes.io/managed-by": "envspec", "envspec.dev/instance": "preview-pr-108"}},
        "status": {"phase": "Active"}})
    lines: list[str] = []
    result = destroy_instance(kube, other, _options(report=lines.append))
    assert fake_kube.get("v1", "Namespace", NS) is not None
    assert fake_kube.get("v1", "Namespace", "preview-pr-108") is not None
    assert result.namespaces == [] and set(result.skipped) == {f"Namespace/{NS}", "Namespace/preview-pr-108"}
    assert f"skipped Namespace/{NS}: its labels do not say envspec manages it for {INSTANCE}" in lines
    assert not any(r.method == "DELETE" and "/api/v1/namespaces/" in r.path and "/postgres/" not in r.path
                   for r in fake_kube.requests)


def test_no_secret_value_reaches_progress_lines_or_errors(tmp_path: Path) -> None:
    """The drop Job's log tail (quoted in the error) carries the canary and a live Secret's value."""
    generated = "generated-pw-0c4a9b1e77d2"
    with FakeKube(auto_ready=True) as fake:
        seed_database_namespace(fake)
        kc = fake.write_kubeconfig(tmp_path / "kc")
        _, api = load_target(kc, None)
        kube = Kube(api, retry=no_sleep_retry())
        _apply(kube)
        # A member Secret whose value only the cluster knows (like a password apply generated).
        set_id = fake.get("v1", "Secret", "applyset-" + INSTANCE, "default")["metadata"]["labels"][
            "applyset.kubernetes.io/id"]
        fake.put({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "app-db", "namespace": NS, "labels": {**plan().labels, "applyset.kubernetes.io/part-of": set_id}},
            "data": {"password": base64.b64encode(generated.encode()).decode()}})
        fake.auto_ready = False
        log = f"psql: FATAL: password authentication failed: {CANARY} / {generated}\n"

        def sleep(_: float) -> None:
            for live in fake.list("batch/v1", "Job", namespace="postgres"):
                name = live["metadata"]["name"]
                if not live.get("status"):
                    fake.set_status("batch/v1", "Job", name, "postgres", {"failed": 3, "conditions": [
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
                    fake.add_pod("postgres", name + "-p", labels={"job-name": name}, owner_kind="Job",
                                 owner_name=name, phase="Failed")
                    fake.set_pod_log("postgres", name + "-p", log)

        settings = fast_wait()
        settings.sleep = sleep
        lines: list[str] = []
        options = _options(wait=settings, report=lines.append)
        with pytest.raises(OperationError) as info:
            destroy_instance(kube, plan(), options)
        kube.close()
    text = str(info.value) + "\n".join(str(p) for p in info.value.problems)
    assert "password authentication failed: <masked> / <masked>" in text
    assert CANARY not in text and generated not in text
    assert lines and not any(CANARY in line or generated in line for line in lines)


def test_progress_lines_are_scrubbed(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    lines: list[str] = []
    # A stray whose name the scrubber must catch proves every report line passes through it.
    fake_kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "stray", "namespace": "default",
        "labels": {"envspec.dev/instance": INSTANCE, "app.kubernetes.io/managed-by": "envspec"}}})
    destroy_instance(kube, plan(), _options(report=lines.append, environ={"ENVSPEC_TEST_DB_PASSWORD": "stray"}))
    assert "deleted ConfigMap/default/<masked>" in lines and not any("stray" in line for line in lines)


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


# --- the drop Job's script, run by sh against a stand-in psql --------------------------------

FAKE_PSQL = r"""#!/bin/sh
# psql [-X] -v ON_ERROR_STOP=1 -qtAc SQL: databases and roles are files under $PGSTATE.
for a; do sql="$a"; done  # the SQL is the last argument
name=$(printf '%s' "$sql" | sed -n "s/.*= '\([a-z0-9_]*\)'.*/\1/p; s/.*EXISTS \"\([a-z0-9_]*\)\".*/\1/p")
case "$sql" in
  *"FROM pg_database"*) [ -e "$PGSTATE/db_$name" ] && echo 1 || echo 0 ;;
  *"FROM pg_roles"*) [ -e "$PGSTATE/role_$name" ] && echo 1 || echo 0 ;;
  "DROP DATABASE"*) [ -e "$PGSTATE/db_$name.stuck" ] || rm -f "$PGSTATE/db_$name" ;;
  "DROP ROLE"*) rm -f "$PGSTATE/role_$name" ;;
  *) echo "unexpected SQL: $sql" >&2; exit 3 ;;
esac
"""


def _run_script(tmp_path: Path, existing: list[str], *, role: str | None = "preview_pr_107") -> tuple[int, str, set[str]]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    psql = bin_dir / "psql"
    psql.write_text(FAKE_PSQL)
    psql.chmod(psql.stat().st_mode | stat.S_IEXEC)
    for name in existing:
        (state / name).touch()
    drop = DatabaseDrop(database="preview_pr_107", host="h", port=5432, image="i", namespace="n", user_secret="s",
                        role=role)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PGSTATE": str(state)}
    done = subprocess.run(["sh", "-c", drop_script(drop)], check=False, env=env, capture_output=True, text=True, timeout=10)
    return done.returncode, done.stdout + done.stderr, {p.name for p in state.iterdir()}


@pytest.mark.parametrize(
    ("existing", "printed"),
    [
        (["db_preview_pr_107", "role_preview_pr_107"], "dropped"),
        (["role_preview_pr_107"], "dropped"),  # an earlier run dropped the database, then failed on the role
        ([], "absent"),
    ],
)
def test_drop_script_drops_database_then_role_and_says_what_it_found(
    tmp_path: Path, existing: list[str], printed: str
) -> None:
    code, output, left = _run_script(tmp_path, [*existing, "db_other"])
    assert code == 0, output
    assert output.splitlines()[-1] == printed
    assert left == {"db_other"}


def test_drop_script_fails_when_the_database_survives(tmp_path: Path) -> None:
    code, output, _ = _run_script(tmp_path, ["db_preview_pr_107", "db_preview_pr_107.stuck"])
    assert code == 1 and "database preview_pr_107 still exists" in output


def test_drop_script_without_a_role_leaves_roles_alone(tmp_path: Path) -> None:
    code, output, left = _run_script(tmp_path, ["db_preview_pr_107", "role_preview_pr_107"], role=None)
    assert code == 0 and output.splitlines()[-1] == "dropped" and left == {"role_preview_pr_107"}


@pytest.mark.parametrize("role", ['x"; DROP ROLE postgres; --', "App", "r-1"])
def test_unsafe_role_names_are_refused(role: str) -> None:
    drop = DatabaseDrop(database="ok_db", host="h", port=5432, image="i", namespace="n", user_secret="s", role=role)
    with pytest.raises(SpecError, match="refusing to drop role"):
        drop_database_job(drop, plan())


def test_an_object_recreated_after_listing_is_not_deleted(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """Deletes carry the listed uid: a namesake someone created meanwhile is another object, and not ours."""
    from tests.test_kube_helpers import _meta, objects

    shared = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**_meta("shared-config"), "namespace": "shared"},
              "data": {"a": "b"}}
    with_shared = plan(objects() + [shared])
    seed_database_namespace(fake_kube)
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"}})
    apply_plan(kube, with_shared, ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))
    listed_uid = fake_kube.get("v1", "ConfigMap", "shared-config", "shared")["metadata"]["uid"]

    def report(line: str) -> None:  # between the listing and the ConfigMap's turn, someone recreates it
        if line.startswith("deleted Deployment/") and fake_kube.get("v1", "ConfigMap", "shared-config", "shared"):
            fake_kube.delete_direct("v1", "ConfigMap", "shared-config", "shared")
            fake_kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared-config", "namespace": "shared"},
                           "data": {"owner": "someone else"}})

    result = destroy_instance(kube, with_shared, _options(report=report))

    survivor = fake_kube.get("v1", "ConfigMap", "shared-config", "shared")
    assert survivor is not None and survivor["data"] == {"owner": "someone else"}
    assert survivor["metadata"]["uid"] != listed_uid
    assert "ConfigMap/shared/shared-config" not in result.deleted and f"Deployment/{NS}/web" in result.deleted
    deletes = [r for r in fake_kube.requests if r.method == "DELETE" and r.path.endswith("/namespaces/shared/configmaps/shared-config")]
    assert len(deletes) == 1 and deletes[0].body["preconditions"] == {"uid": listed_uid}


def test_the_drop_job_runs_in_a_services_namespace_never_in_a_domain_label() -> None:
    from envspec.components.database.lifecycle import service_namespace

    assert service_namespace("db.default.svc.cluster.local") == "default"
    assert service_namespace("db.shared.svc") == "shared"
    assert service_namespace("postgres.example.com") is None
    assert service_namespace("localhost") is None
