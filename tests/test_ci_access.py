"""preview-base renders the CI credentials: three ServiceAccounts, their RBAC, and the admission policies
that confine what RBAC cannot (docs/pr-flow.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from envspec.pipeline import compile_environment

ROOT = Path(__file__).resolve().parent.parent
NS = "envspec-ci"
ACCOUNTS = ("envspec-plan", "envspec-deploy", "envspec-cleanup")
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return list(compile_environment("preview-base", root=ROOT).plan.objects)


def by(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def rules(objects: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return list(by(objects, "ClusterRole")[role]["rules"])


def test_three_service_accounts_each_bound_to_its_own_role(objects: list[dict[str, Any]]) -> None:
    accounts = by(objects, "ServiceAccount")
    assert set(accounts) == set(ACCOUNTS)
    assert all(a["metadata"]["namespace"] == NS and a["automountServiceAccountToken"] is False for a in accounts.values())
    bindings = by(objects, "ClusterRoleBinding")
    for name in ACCOUNTS:
        assert bindings[name]["roleRef"]["name"] == name
        assert bindings[name]["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": NS}]


def test_no_role_uses_wildcards(objects: list[dict[str, Any]]) -> None:
    for name in ACCOUNTS:
        for rule in rules(objects, name):
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], (name, rule)


def test_the_plan_cannot_touch_secrets(objects: list[dict[str, Any]]) -> None:
    for rule in rules(objects, "envspec-plan"):
        assert "secrets" not in rule["resources"]
        assert not {"delete", "update", "deletecollection"} & set(rule["verbs"])


def test_the_cleanup_account_may_only_delete_plus_the_drop_job_and_finalize(objects: list[dict[str, Any]]) -> None:
    for rule in rules(objects, "envspec-cleanup"):
        writes = set(rule["verbs"]) & WRITE_VERBS
        if writes - {"delete"}:
            assert (rule["apiGroups"], rule["resources"], writes) in (
                ([""], ["namespaces/finalize"], {"update"}),
                (["batch"], ["jobs"], {"delete", "create"}),
                (["coordination.k8s.io"], ["leases"], {"create", "update", "delete"}),  # the instance's lock
            ), rule


def policy(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return by(objects, "ValidatingAdmissionPolicy")[name]["spec"]


@pytest.mark.parametrize(
    ("name", "account"),
    [("envspec-plan-dry-run-only", "envspec-plan"), ("envspec-deploy-previews-only", "envspec-deploy"),
     ("envspec-cleanup-previews-only", "envspec-cleanup")],
)
def test_each_account_has_a_denying_policy_on_every_write(objects: list[dict[str, Any]], name: str, account: str) -> None:
    spec = policy(objects, name)
    assert spec["failurePolicy"] == "Fail"
    [match] = spec["matchConditions"]
    assert match["expression"] == f"request.userInfo.username == 'system:serviceaccount:{NS}:{account}'"
    [resources] = spec["matchConstraints"]["resourceRules"]
    assert resources["resources"] == ["*"] and {"CREATE", "UPDATE", "DELETE"} <= set(resources["operations"])
    binding = by(objects, "ValidatingAdmissionPolicyBinding")[name]["spec"]
    assert binding == {"policyName": name, "validationActions": ["Deny"]}


def test_what_the_policies_say(objects: list[dict[str, Any]]) -> None:
    assert [v["expression"] for v in policy(objects, "envspec-plan-dry-run-only")["validations"]] == ["request.dryRun == true"]
    cleanup = policy(objects, "envspec-cleanup-previews-only")
    labelled = next(v["expression"] for v in cleanup["variables"] if v["name"] == "labelled")
    assert "labels['envspec.dev/environment'] == 'preview-pr'" in labelled and "envspec.dev/instance" in labelled
    assert all("'^preview-pr-[0-9]+$'" in v["expression"] or "variables.labelled" in v["expression"]
               for v in cleanup["validations"])
    deploy = " ".join(v["expression"] for v in policy(objects, "envspec-deploy-previews-only")["validations"])
    assert "request.namespace.matches('^preview-pr-[0-9]+$')" in deploy


@pytest.mark.parametrize("version", ["1.32.0", "1.34.0"])
def test_they_pass_the_kubernetes_schemas(objects: list[dict[str, Any]], version: str) -> None:
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
             "ValidatingAdmissionPolicyBinding", "Namespace"}
    checked = 0
    for obj in objects:
        if obj["kind"] in kinds and (obj["kind"] != "Namespace" or obj["metadata"]["name"] == NS):
            kubernetes_validate.validate(obj, version, strict=True)
            checked += 1
    assert checked == 1 + 3 + 3 + 3 + 3 + 3


# --- what the policies admit, evaluated with a CEL interpreter (cel-python) -------------------------------

LABELS = {"envspec.dev/environment": "preview-pr", "envspec.dev/instance": "preview-pr-107"}
DROP_JOB = {"envspec.dev/environment": "preview-pr", "envspec.dev/drops-instance": "preview-pr-107"}
BASE = {"envspec.dev/environment": "preview-base", "envspec.dev/instance": "preview-base"}


def admits(spec: dict[str, Any], operation: str, kind: str, name: str, namespace: str = "", *, group: str = "",
           labels: dict[str, str] | None = None, sub: str = "", dry_run: bool = False,
           old_labels: dict[str, str] | None = None) -> bool:
    """Whether every validation of `spec` holds for this request (the policy's variables evaluated first)."""
    import celpy

    env = celpy.Environment()
    obj = {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})}}
    request = {"operation": operation, "kind": {"group": group, "version": "v1", "kind": kind}, "name": name,
               "namespace": namespace, "subResource": sub, "dryRun": dry_run,
               "userInfo": {"username": "system:serviceaccount:envspec-ci:x"}}
    activation: dict[str, Any] = {
        "request": celpy.json_to_cel(request),
        "object": celpy.json_to_cel(None if operation == "DELETE" else obj),
        "oldObject": celpy.json_to_cel(
            None if operation == "CREATE" else
            {"metadata": {**obj["metadata"], "labels": dict(labels if old_labels is None else old_labels)}}
        ),
    }
    values: dict[Any, Any] = {}
    for variable in spec.get("variables", []):
        activation["variables"] = celpy.celtypes.MapType(values)
        values[celpy.celtypes.StringType(variable["name"])] = env.program(env.compile(variable["expression"])).evaluate(activation)
    activation["variables"] = celpy.celtypes.MapType(values)
    return all(bool(env.program(env.compile(v["expression"])).evaluate(activation)) for v in spec["validations"])


def test_the_plan_policy_admits_only_dry_runs(objects: list[dict[str, Any]]) -> None:
    spec = policy(objects, "envspec-plan-dry-run-only")
    assert admits(spec, "UPDATE", "Deployment", "web", "preview-pr-1", group="apps", labels=LABELS, dry_run=True)
    assert not admits(spec, "UPDATE", "Deployment", "web", "preview-pr-1", group="apps", labels=LABELS)
    assert not admits(spec, "DELETE", "Namespace", "preview-pr-1", labels=LABELS)


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (("DELETE", "ConfigMap", "web-config", "preview-pr-107", "", LABELS, ""), True),
        (("DELETE", "Namespace", "preview-pr-107", "", "", LABELS, ""), True),
        (("DELETE", "Secret", "envspec-preview-pr-107", "preview-pr-107", "", LABELS, ""), True),  # the ApplySet parent
        (("CREATE", "Job", "envspec-drop-aphiria-pr-107", "default", "batch", DROP_JOB, ""), True),
        (("DELETE", "Job", "envspec-drop-aphiria-pr-107", "default", "batch", DROP_JOB, ""), True),
        (("UPDATE", "Namespace", "preview-pr-107", "", "", LABELS, "finalize"), True),
        (("DELETE", "Secret", "postgres-admin", "default", "", BASE, ""), False),
        (("DELETE", "Deployment", "db", "default", "apps", BASE, ""), False),
        (("DELETE", "Namespace", "kube-system", "", "", LABELS, ""), False),  # labelled by hand: still not a preview
        (("DELETE", "ConfigMap", "unlabelled", "preview-pr-107", "", {}, ""), False),
        (("UPDATE", "Deployment", "web", "preview-pr-107", "apps", LABELS, ""), False),
        (("CREATE", "Pod", "shell", "preview-pr-107", "", LABELS, ""), False),
        (("UPDATE", "Namespace", "default", "", "", LABELS, "finalize"), False),
        (("CREATE", "Lease", "envspec-lock-preview-pr-107", "default", "coordination.k8s.io", {}, ""), True),
        (("UPDATE", "Lease", "envspec-lock-preview-pr-107", "default", "coordination.k8s.io", {}, ""), True),
        (("UPDATE", "Lease", "envspec-lock-production", "default", "coordination.k8s.io", {}, ""), False),
    ],
)
def test_the_cleanup_policy_admits_only_destroying_previews(
    objects: list[dict[str, Any]], request_: tuple[Any, ...], allowed: bool
) -> None:
    operation, kind, name, namespace, group, labels, sub = request_
    spec = policy(objects, "envspec-cleanup-previews-only")
    assert admits(spec, operation, kind, name, namespace, group=group, labels=labels, sub=sub) is allowed


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (("CREATE", "Namespace", "preview-pr-107", "", "", LABELS), True),
        (("UPDATE", "Deployment", "web", "preview-pr-107", "apps", LABELS), True),
        (("CREATE", "Secret", "db-credentials", "preview-pr-107", "", LABELS), True),
        (("CREATE", "Job", "create-database", "default", "batch", LABELS), True),
        (("CREATE", "Secret", "app-db-verifier", "default", "", LABELS), True),  # the role's SCRAM verifier
        (("UPDATE", "Secret", "app-db-verifier", "default", "", LABELS), True),
        (("DELETE", "Secret", "app-db-verifier", "default", "", LABELS), True),
        (("UPDATE", "ConfigMap", "db-config", "default", "", LABELS), False),
        (("UPDATE", "Secret", "postgres-admin", "default", "", BASE), False),
        (("CREATE", "Namespace", "evil", "", "", LABELS), False),
        (("UPDATE", "Deployment", "nginx-gateway", "nginx-gateway", "apps", LABELS), False),
        (("CREATE", "Job", "anything", "default", "batch", BASE), False),
        (("UPDATE", "Lease", "envspec-lock-preview-pr-107", "default", "coordination.k8s.io", {}), True),
        (("UPDATE", "Lease", "envspec-lock-preview-base", "default", "coordination.k8s.io", {}), False),
    ],
)
def test_the_deploy_policy_admits_only_preview_namespaces(
    objects: list[dict[str, Any]], request_: tuple[Any, ...], allowed: bool
) -> None:
    operation, kind, name, namespace, group, labels = request_
    spec = policy(objects, "envspec-deploy-previews-only")
    assert admits(spec, operation, kind, name, namespace, group=group, labels=labels) is allowed


def test_relabelling_a_shared_object_is_refused(objects: list[dict[str, Any]]) -> None:
    """Patching preview-base's admin Secret with a preview label does not make it the deploy's to write."""
    spec = policy(objects, "envspec-deploy-previews-only")
    assert not admits(spec, "UPDATE", "Secret", "postgres-admin", "default", labels=LABELS, old_labels=BASE)
    assert admits(spec, "UPDATE", "Secret", "app-db-verifier", "default", labels=LABELS, old_labels=LABELS)
    cleanup = policy(objects, "envspec-cleanup-previews-only")
    assert not admits(cleanup, "DELETE", "Secret", "postgres-admin", "default", labels=LABELS, old_labels=BASE)
