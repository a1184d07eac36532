"""Generated secrets, the database role following them, and pods rolling on a Secret change.

Against the fake API server over real HTTP: a generated value is created once (POST, create-only;
a 409 means another apply made it, whose value is then used), never overwritten, re-created only
when the Secret is lost -- and then the database role's Job re-runs with it, because its pod
template carries a keyed checksum of the password computed at apply time. The same checksum
rolls Deployments when a `fromEnv` value is rotated, without the value (or an unkeyed hash of it)
appearing anywhere.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
from typing import Any

from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.destroy import DestroyOptions, destroy_instance
from envspec.kube.diff import diff_live
from envspec.kube.inventory import PART_OF_LABEL, ApplySetRef
from envspec.kube.secrets import (
    SECRET_CHECKSUM_ANNOTATION,
    build_secrets,
    checksum,
    checksum_key_name,
    prepare_secrets,
    scram_verifier,
)
from envspec.kube.client import Kube, load_target
from envspec.kube.stages import desired_objects
from envspec.objects import object_id
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    CANARY,
    NS,
    compile_preview_pr,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    no_sleep_retry,
    plan,
    seed_shared_infrastructure,
)

PR_ENV = {"GHCR_TOKEN": "ghcr-token-for-tests"}
CREATE_JOB = "envspec-create-aphiria-pr-107-0b7eadba"
ROLE_COPY = "envspec-role-aphiria-pr-107-0b7eadba"


def options(environ: dict[str, str], **overrides: Any) -> ApplyOptions:
    return ApplyOptions(environ=environ, wait=fast_wait(), check_helm=False, **overrides)


def decoded(secret: dict[str, Any] | None, key: str = "password") -> str:
    assert secret is not None
    return base64.b64decode(secret["data"][key]).decode()


def verifies(verifier: str, password: str) -> bool:
    """Whether `verifier` is PostgreSQL's SCRAM-SHA-256 verifier of `password` (the role copy holds no password)."""
    head, _, _ = verifier.partition("$")[2].partition("$")
    iterations, _, salt = head.partition(":")
    return verifier.startswith("SCRAM-SHA-256$") and password not in verifier and \
        scram_verifier(password, base64.b64decode(salt), int(iterations)) == verifier


def annotation(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return obj["spec"]["template"]["metadata"]["annotations"][SECRET_CHECKSUM_ANNOTATION]


def posts(fake: FakeKube, suffix: str) -> int:
    return sum(1 for r in fake.requests if r.method in ("POST", "PUT") and r.path.endswith(suffix))


def apply_pr(fake: FakeKube, kube: Kube, **overrides: Any) -> Any:
    return apply_plan(kube, compile_preview_pr().plan, options(PR_ENV, **overrides))


# --- item: generated secrets -----------------------------------------------------------------


def test_generated_password_is_created_once_and_never_overwritten(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    apply_pr(fake_kube, kube)
    password = decoded(fake_kube.get("v1", "Secret", "app-db", NS))
    assert len(password) == 32
    # app-db, the metrics token and the checksum key, each POSTed once
    assert posts(fake_kube, f"/namespaces/{NS}/secrets") == 3
    # The role's Job reads a copy in the shared database's namespace, and carries its keyed checksum.
    assert verifies(decoded(fake_kube.get("v1", "Secret", ROLE_COPY, "default")), password)
    key = fake_kube.get("v1", "Secret", checksum_key_name("preview-pr-107"), NS)["data"]["key"]
    role_copy = fake_kube.get("v1", "Secret", ROLE_COPY, "default")
    job = fake_kube.get("batch/v1", "Job", CREATE_JOB, "default")
    assert annotation(job) == checksum(key, [role_copy])
    assert password not in json.dumps(job) and hashlib.sha256(password.encode()).hexdigest() != annotation(job)

    fake_kube.reset_requests()
    again = apply_pr(fake_kube, kube)
    assert decoded(fake_kube.get("v1", "Secret", "app-db", NS)) == password
    assert not [r for r in fake_kube.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert f"Job/default/{CREATE_JOB}" in again.unchanged


def test_a_first_apply_racing_another_uses_the_password_that_won(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    # The other apply creates app-db after this one listed the cluster (its snapshot says "no Secret").
    seed_shared_infrastructure(fake_kube)
    set_id = ApplySetRef.for_instance("preview-pr-107", NS).id
    winner = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "app-db", "namespace": NS,
                           "labels": {**compile_preview_pr().labels, PART_OF_LABEL: set_id}},
              "data": {"password": base64.b64encode(b"the-other-apply-won-this-one").decode()}}

    def report(line: str) -> None:
        if line.startswith("stage 1:") and fake_kube.get("v1", "Secret", "app-db", NS) is None:
            fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS},
                           "status": {"phase": "Active"}})
            fake_kube.put(copy.deepcopy(winner))

    apply_pr(fake_kube, kube, report=report)
    assert decoded(fake_kube.get("v1", "Secret", "app-db", NS)) == "the-other-apply-won-this-one"
    assert verifies(decoded(fake_kube.get("v1", "Secret", ROLE_COPY, "default")), "the-other-apply-won-this-one")


def test_two_simultaneous_first_applies_converge_on_one_password(fake_kube: FakeKube, kubeconfig) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}, "status": {"phase": "Active"}})
    the_plan = compile_preview_pr().plan
    set_id = ApplySetRef.for_instance(the_plan.instance, the_plan.applyset_namespace).id
    barrier = threading.Barrier(2, timeout=10)
    results: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []

    def first_apply() -> None:
        _, api_client = load_target(kubeconfig, None)
        with Kube(api_client, retry=no_sleep_retry(), request_timeout=5.0) as client:
            try:
                secrets, redactor = build_secrets(the_plan, PR_ENV)
                desired = desired_objects(the_plan, secrets, set_id)
                barrier.wait()  # both have seen "no Secret" and go at once
                prepare_secrets(the_plan, PR_ENV, desired, lambda ns, name: None, redactor, kube=client)
                results.append([o for o in desired if o["kind"] == "Secret"])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=first_apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(results) == 2
    live = decoded(fake_kube.get("v1", "Secret", "app-db", NS))
    for secrets in results:
        by_name = {s["metadata"]["name"]: s for s in secrets}
        assert decoded(by_name["app-db"]) == live and verifies(decoded(by_name[ROLE_COPY]), live)
    assert sum(1 for r in fake_kube.requests if r.method == "POST" and r.path.endswith(f"/namespaces/{NS}/secrets")
               and (r.body or {}).get("metadata", {}).get("name") == "app-db") == 2  # one created, one got 409


def test_a_lost_secret_is_generated_again_and_the_role_and_pods_follow(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    apply_pr(fake_kube, kube)
    before = decoded(fake_kube.get("v1", "Secret", "app-db", NS))
    job_before = annotation(fake_kube.get("batch/v1", "Job", CREATE_JOB, "default"))
    api_before = annotation(fake_kube.get("apps/v1", "Deployment", "api", NS))

    fake_kube.delete_direct("v1", "Secret", "app-db", NS)  # lost (deleted by hand)
    result = apply_pr(fake_kube, kube)
    after = decoded(fake_kube.get("v1", "Secret", "app-db", NS))
    assert after != before
    assert verifies(decoded(fake_kube.get("v1", "Secret", ROLE_COPY, "default")), after)
    # The role Job ran again with the new password (Jobs are immutable: replaced), the API rolls.
    assert f"Job/default/{CREATE_JOB}" in result.replaced
    assert annotation(fake_kube.get("batch/v1", "Job", CREATE_JOB, "default")) != job_before
    assert annotation(fake_kube.get("apps/v1", "Deployment", "api", NS)) != api_before
    # ...also when the finished Job was already removed by its TTL: the recorded hash no longer matches.
    fake_kube.delete_direct("batch/v1", "Job", CREATE_JOB, "default")
    fake_kube.delete_direct("v1", "Secret", "app-db", NS)
    third = apply_pr(fake_kube, kube)
    assert f"Job/default/{CREATE_JOB}" in third.created


# --- item: admin credentials -----------------------------------------------------------------


def test_a_pr_namespace_holds_no_admin_credentials_and_destroy_removes_the_shared_namespace_members(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    compiled = compile_preview_pr()
    apply_plan(kube, compiled.plan, options(PR_ENV))
    names = sorted(s["metadata"]["name"] for s in fake_kube.list("v1", "Secret", NS))
    assert names == sorted(["app-db", "api-metrics-token", "ghcr-pull", "applyset-preview-pr-107",
                            checksum_key_name("preview-pr-107")])
    for kind in (("v1", "Secret"), ("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("batch/v1", "Job")):
        for obj in fake_kube.list(*kind, NS):
            assert "postgres-admin" not in json.dumps(obj), object_id(obj)
    # The database Job and the role's password copy live in `default`, as members of the PR's ApplySet.
    set_id = ApplySetRef.for_instance("preview-pr-107", NS).id
    for api_version, kind, name in (("batch/v1", "Job", CREATE_JOB), ("v1", "Secret", ROLE_COPY)):
        live = fake_kube.get(api_version, kind, name, "default")
        assert live is not None and live["metadata"]["labels"][PART_OF_LABEL] == set_id
    destroy_instance(kube, compiled.plan, DestroyOptions(wait=fast_wait(), environ=PR_ENV))
    assert fake_kube.get("batch/v1", "Job", CREATE_JOB, "default") is None
    assert fake_kube.get("v1", "Secret", ROLE_COPY, "default") is None
    assert fake_kube.get("v1", "Secret", "postgres-admin", "default") is not None  # the shared admin Secret stays


# --- item: secret rotation -------------------------------------------------------------------


def _reader_plan() -> Any:
    """The helpers' plan with an `api` Deployment reading the db-credentials Secret (built from the environment)."""
    objs = plan().objects
    for obj in objs:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "api":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [{"name": "DB_PASSWORD",
                                 "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}]
    return plan(objs)


def test_rotating_a_secret_rolls_the_pods_that_read_it_without_exposing_it(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    the_plan = _reader_plan()
    pristine = copy.deepcopy(the_plan.objects)
    first = {"ENVSPEC_TEST_DB_PASSWORD": CANARY}
    apply_plan(kube, the_plan, options(first))
    api_first = annotation(fake_kube.get("apps/v1", "Deployment", "api", NS))
    web = fake_kube.get("apps/v1", "Deployment", "web", NS)
    assert SECRET_CHECKSUM_ANNOTATION not in (web["spec"]["template"]["metadata"].get("annotations") or {})

    fake_kube.reset_requests()
    same = apply_plan(kube, the_plan, options(first))
    assert "Deployment/preview-pr-107/api" in same.unchanged
    assert not [r for r in fake_kube.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    rotated = {"ENVSPEC_TEST_DB_PASSWORD": CANARY + "-rotated"}
    lines: list[str] = []
    result = apply_plan(kube, the_plan, options(rotated, report=lines.append))
    api_rotated = fake_kube.get("apps/v1", "Deployment", "api", NS)
    assert "Deployment/preview-pr-107/api" in result.updated and "Deployment/preview-pr-107/web" in result.unchanged
    assert annotation(api_rotated) != api_first
    # Keyed: neither the value nor its plain hash can be read off the annotation (nor anything printed).
    for value in (CANARY, CANARY + "-rotated"):
        plain = base64.b64encode(value.encode()).decode()
        for digest in (hashlib.sha256(value.encode()).hexdigest(), hashlib.sha256(plain.encode()).hexdigest()):
            assert digest not in (api_first, annotation(api_rotated))
        assert value not in json.dumps(api_rotated) and value not in "\n".join(lines)
    # The render (the plan's objects) never carries it: the annotation exists only at apply time.
    assert the_plan.objects == pristine

    # diff computes the same annotation: nothing to change with the applied value, a change with another one,
    # and without the variable (CI before approval) the live value is compared, so no change either.
    assert not diff_live(kube, the_plan, environ=rotated).has_changes
    changed = diff_live(kube, the_plan, environ={"ENVSPEC_TEST_DB_PASSWORD": "a-third-value"})
    assert "Deployment/preview-pr-107/api" in changed.changed and "a-third-value" not in changed.diff
    assert not diff_live(kube, the_plan, environ={}).has_changes


def test_the_checksum_key_is_per_instance_and_created_once(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    the_plan = _reader_plan()
    env = {"ENVSPEC_TEST_DB_PASSWORD": CANARY}
    apply_plan(kube, the_plan, options(env))
    key = fake_kube.get("v1", "Secret", checksum_key_name("preview-pr-107"), "default")
    assert key is not None and len(decoded(key, "key")) == 32
    apply_plan(kube, the_plan, options(env))
    assert fake_kube.get("v1", "Secret", checksum_key_name("preview-pr-107"), "default")["data"] == key["data"]
    # The annotation is the HMAC of the Secret under that key; under another key the same value differs.
    secret = fake_kube.get("v1", "Secret", "db-credentials", NS)
    assert annotation(fake_kube.get("apps/v1", "Deployment", "api", NS)) == checksum(key["data"]["key"], [secret])
    assert checksum("key-one", [secret]) != checksum("key-two", [secret])


def test_render_output_has_no_secret_checksum_and_is_deterministic() -> None:
    first, second = compile_preview_pr(), compile_preview_pr()
    assert first.objects == second.objects
    assert SECRET_CHECKSUM_ANNOTATION not in json.dumps(first.objects)


def test_a_diff_before_the_first_apply_shows_no_unkeyed_hash(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    # No checksum key exists yet: a hash under any known key would be a plain hash of the value.
    the_plan = _reader_plan()
    changes = diff_live(kube, the_plan, environ={"ENVSPEC_TEST_DB_PASSWORD": "guessable"})
    assert f"{SECRET_CHECKSUM_ANNOTATION}: <computed at apply>" in changes.diff
    assert hashlib.sha256(b"guessable").hexdigest() not in changes.diff


def test_only_the_database_job_may_run_in_the_protected_shared_namespace() -> None:
    import pytest

    from envspec.errors import SpecError

    compiled = compile_preview_pr()  # `default` is in preview-pr's protectedNamespaces, and renders fine
    assert "default" in compiled.plan.protected_namespaces
    with pytest.raises(SpecError, match=r"Job migrate would be written to protected namespace default"):
        compile_preview_pr(sets=("jobs.migrate.namespace=default",))


def test_a_generated_key_missing_from_an_existing_secret_is_added_and_nothing_else_changes(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    set_id = ApplySetRef.for_instance("preview-pr-107", NS).id
    # The namespace as an earlier apply left it: a member of this instance's ApplySet (never adopted).
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "status": {"phase": "Active"},
                   "metadata": {"name": NS, "labels": {**compile_preview_pr().labels, PART_OF_LABEL: set_id}}})
    fake_kube.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "app-db", "namespace": NS,
                                "labels": {**compile_preview_pr().labels, PART_OF_LABEL: set_id}},
                   "data": {"note": base64.b64encode(b"kept").decode()}})
    apply_pr(fake_kube, kube)
    live = fake_kube.get("v1", "Secret", "app-db", NS)
    assert decoded(live, "note") == "kept" and len(decoded(live)) == 32
    puts = [r for r in fake_kube.requests if r.method == "PUT" and r.path.endswith(f"/namespaces/{NS}/secrets/app-db")]
    assert len(puts) == 1 and puts[0].body["metadata"].get("resourceVersion")  # conditional on what was read


def test_an_upgraded_pr_namespace_loses_the_admin_secret_an_earlier_apply_put_there(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    apply_pr(fake_kube, kube)
    set_id = ApplySetRef.for_instance("preview-pr-107", NS).id
    fake_kube.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",  # what envspec built there before
                   "metadata": {"name": "postgres-admin", "namespace": NS,
                                "labels": {**compile_preview_pr().labels, PART_OF_LABEL: set_id}},
                   "data": {"username": base64.b64encode(b"postgres").decode()}})
    result = apply_pr(fake_kube, kube)
    assert f"Secret/{NS}/postgres-admin" in result.pruned
    assert fake_kube.get("v1", "Secret", "postgres-admin", NS) is None
