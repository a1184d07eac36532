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
