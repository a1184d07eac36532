"""Never adopt, never delete what is not ours (issue 9), against the fake API server.

* the cluster's own namespaces are built in: a spec cannot render them (rule
  `system-namespaces`), and apply, prune and destroy refuse them again;
* apply never takes over an existing object that is not a member of the
  instance's ApplySet unless `--adopt`, and refuses before its first write;
* destroy deletes a namespace only when the ApplySet parent records that this
  instance created it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from envspec.cli import main
from envspec.errors import OperationError, SpecError
from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube
from envspec.kube.destroy import DestroyOptions, destroy_instance
from envspec.kube.inventory import CREATED_NAMESPACES_ANNOTATION, PART_OF_LABEL, applyset_id
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    CANARY,
    ENV,
    GATEWAY_NS,
    INSTANCE,
    NS,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    objects,
    plan,
    preview_pr_args,
    seed_shared_infrastructure,
)

pytestmark = pytest.mark.usefixtures("repo_root")

WRITES = ("POST", "PUT", "PATCH", "DELETE")
CLI_ENV = {"POSTGRES_USER": "aphiria", "POSTGRES_PASSWORD": CANARY, "GHCR_TOKEN": "ghcr-token"}
# The reproduction: the environment's own protection emptied, the PR pointed at the gateway's namespace.
SHARED = ["--set", "protectedNamespaces=[]", "--set", f"namespace.name={GATEWAY_NS}"]


def single_gets(fake: FakeKube) -> list[str]:
    """GETs of one named object (not lists, not discovery)."""
    out = []
    for r in fake.requests:
        parts = r.path.strip("/").split("/")
        if r.method != "GET" or parts[0] not in ("api", "apis"):
            continue
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]
        if len(rest) == 2:
            out.append(r.path)
    return out


def writes(fake: FakeKube) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in WRITES]


def pr_cmd(command: str, kubeconfig: Path, *extra: str) -> Result:  # noqa: F811
    args = [command, "preview-pr", *preview_pr_args(107), "--kubeconfig", str(kubeconfig), "--timeout", "5", *extra]
    return CliRunner().invoke(main, args, env=CLI_ENV, catch_exceptions=False)


def options(**overrides: Any) -> ApplyOptions:
    return ApplyOptions(**{"environ": ENV, "wait": fast_wait(), "check_helm": False, **overrides})


def destroy_options() -> DestroyOptions:
    return DestroyOptions(wait=fast_wait(), grace_seconds=0.0, environ=ENV)


def _gateway_state(fake: FakeKube) -> tuple[Any, ...]:
    ns = fake.get("v1", "Namespace", GATEWAY_NS)
    gateway = fake.get("gateway.networking.k8s.io/v1", "Gateway", "nginx-gateway", GATEWAY_NS)
    return (ns is not None and ns.get("status", {}).get("phase"), (ns or {}).get("metadata", {}).get("labels"),
            gateway is not None)


# --- the scenario, through the command line --------------------------------------------


def test_apply_refuses_to_adopt_the_shared_gateway_namespace_with_zero_writes(
    fake_kube: FakeKube, kubeconfig: Path  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    before = _gateway_state(fake_kube)
    fake_kube.reset_requests()

    result = pr_cmd("apply", kubeconfig, *SHARED)

    assert result.exit_code == 2, result.output
    assert f"refusing to adopt Namespace/{GATEWAY_NS}" in result.stderr
    # located at the spec line that asks for it (here the --set that moved the namespace)
    assert f"--set namespace.name={GATEWAY_NS}: namespace.name: Namespace/{GATEWAY_NS} already exists" in result.stderr
    assert "--adopt" in result.stderr and "Traceback" not in result.output
    assert writes(fake_kube) == []  # refused before the first write: not even the lease
    assert _gateway_state(fake_kube) == before


def test_destroy_never_deletes_the_shared_namespace_even_after_an_explicit_adopt(
    fake_kube: FakeKube, kubeconfig: Path  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    applied = pr_cmd("apply", kubeconfig, *SHARED, "--adopt")
    assert applied.exit_code == 0, applied.stderr
    parent = fake_kube.get("v1", "Secret", f"applyset-{INSTANCE}", GATEWAY_NS)
    assert GATEWAY_NS not in parent["metadata"]["annotations"].get(CREATED_NAMESPACES_ANNOTATION, "")
    assert fake_kube.get("apps/v1", "Deployment", "api", GATEWAY_NS) is not None

    destroyed = pr_cmd("destroy", kubeconfig, *SHARED)

    assert destroyed.exit_code == 0, destroyed.stderr
    assert f"skipped Namespace/{GATEWAY_NS}: this instance did not create it" in destroyed.stderr
    ns = fake_kube.get("v1", "Namespace", GATEWAY_NS)
    assert ns is not None and ns["status"]["phase"] == "Active"
    assert "envspec.dev/instance" not in (ns["metadata"].get("labels") or {})  # released, not deleted
    assert fake_kube.get("gateway.networking.k8s.io/v1", "Gateway", "nginx-gateway", GATEWAY_NS) is not None
    assert fake_kube.get("v1", "Service", "nginx-gateway-nginx-gateway-fabric", GATEWAY_NS) is not None
    assert fake_kube.get("apps/v1", "Deployment", "api", GATEWAY_NS) is None  # the PR's own objects did go
    assert not any("DELETE /api/v1/namespaces/nginx-gateway" == w for w in writes(fake_kube))


def test_destroy_without_an_apply_leaves_the_shared_namespace(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    before = _gateway_state(fake_kube)
    result = pr_cmd("destroy", kubeconfig, *SHARED)
    assert result.exit_code == 0, result.stderr
    assert _gateway_state(fake_kube) == before


def test_a_normal_preview_still_creates_and_deletes_its_own_namespace(
    fake_kube: FakeKube, kubeconfig: Path  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    parent = fake_kube.get("v1", "Secret", f"applyset-{INSTANCE}", NS)
    assert parent["metadata"]["annotations"][CREATED_NAMESPACES_ANNOTATION] == NS
    result = pr_cmd("destroy", kubeconfig)
    assert result.exit_code == 0, result.stderr
    assert fake_kube.get("v1", "Namespace", NS) is None
    assert _gateway_state(fake_kube)[0] == "Active"


# --- apply: strict inventory policy ------------------------------------------------------------


def test_apply_refuses_an_existing_object_it_did_not_create_and_lists_them_all(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fake_kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "js-config", "namespace": NS},
                   "data": {"apiUri": "theirs"}})
    fake_kube.reset_requests()

    with pytest.raises(SpecError) as caught:
        apply_plan(kube, plan(), options())

    message = str(caught.value)
    assert f"Namespace/{NS}" in message and f"ConfigMap/{NS}/js-config" in message and "--adopt" in message
    assert caught.value.exit_code == 2
    assert writes(fake_kube) == []
    assert fake_kube.get("v1", "ConfigMap", "js-config", NS)["data"] == {"apiUri": "theirs"}


def test_adopt_takes_over_unowned_objects_but_never_records_the_namespace_as_created(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"team": "x"}}})
    result = apply_plan(kube, plan(), options(adopt=True))
    assert f"Namespace/{NS}" in result.updated
    parent = fake_kube.get("v1", "Secret", f"applyset-{INSTANCE}", "default")
    assert CREATED_NAMESPACES_ANNOTATION not in parent["metadata"]["annotations"]

    destroyed = destroy_instance(kube, plan(database_drop=None), destroy_options())

    assert f"Namespace/{NS}" in destroyed.skipped and destroyed.namespaces == []
    ns = fake_kube.get("v1", "Namespace", NS)
    assert ns is not None and ns["metadata"]["labels"] == {"team": "x"}  # only envspec's labels went
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is None


def test_objects_of_another_applyset_are_refused_even_with_adopt(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    other = applyset_id("applyset-preview-pr-108", "default")
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fake_kube.put({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": NS, "labels": {PART_OF_LABEL: other}}, "spec": {}})
    fake_kube.reset_requests()
    with pytest.raises(SpecError, match=f"refusing to take over Deployment/{NS}/web: they belong to another ApplySet"):
        apply_plan(kube, plan(), options(adopt=True))
    assert writes(fake_kube) == []


def test_a_reapply_checks_ownership_without_extra_requests(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    fake_kube.reset_requests()
    apply_plan(kube, plan(), options())
    looked_up = [p for p in single_gets(fake_kube) if "/leases/" not in p and "/secrets/applyset-" not in p]
    assert looked_up == []  # every desired object is a listed member: nothing to look up one by one


def test_first_apply_into_a_new_namespace_looks_up_only_the_namespace(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    looked_up = [p for p in single_gets(fake_kube) if "/leases/" not in p and "/secrets/applyset-" not in p]
    # The new namespace was looked up; nothing inside it was (it cannot exist yet); the rest are waits.
    assert f"/api/v1/namespaces/{NS}" in looked_up
    assert not [p for p in looked_up if f"/namespaces/{NS}/" in p and "/jobs/" not in p and "/pods" not in p
                and "/deployments/" not in p and "/httproutes/" not in p]


def test_a_namespace_created_by_someone_else_meanwhile_is_not_taken(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    # Between apply's look-up and its create, someone else creates the namespace: the POST says 409.
    fake_kube.add_fault(method="POST", path_regex=r"^/api/v1/namespaces$", status=409, times=1,
                        body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists",
                              "message": f'namespaces "{NS}" already exists', "code": 409})
    with pytest.raises(SpecError, match=f"refusing to adopt Namespace/{NS}: someone else created it"):
        apply_plan(kube, plan(), options())
    parent = fake_kube.get("v1", "Secret", f"applyset-{INSTANCE}", "default")
    assert NS not in (parent or {}).get("metadata", {}).get("annotations", {}).get(CREATED_NAMESPACES_ANNOTATION, "")


# --- the cluster's own namespaces --------------------------------------------------------------


@pytest.mark.parametrize("name", ["kube-system", "kube-public", "kube-node-lease", "default"])
def test_apply_refuses_a_system_namespace_object_whatever_the_plan_says(
    fake_kube: FakeKube, kube: Kube, name: str  # noqa: F811
) -> None:
    objs = objects()
    objs[0] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {}}}
    fake_kube.reset_requests()
    with pytest.raises(SpecError, match=f"Namespace/{name}: Namespace {name} belongs to the cluster"):
        apply_plan(kube, plan(objs, protected_namespaces=[]), options(adopt=True))
    assert writes(fake_kube) == [] and fake_kube.requests == []  # refused before any request


def test_apply_refuses_objects_inside_kube_system(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    objs = objects()
    objs[2] = copy.deepcopy(objs[2])
    objs[2]["metadata"]["namespace"] = "kube-system"
    with pytest.raises(SpecError, match="ConfigMap/kube-system/js-config: namespace kube-system belongs to the cluster"):
        apply_plan(kube, plan(objs, protected_namespaces=[]), options())
    assert writes(fake_kube) == []


def test_destroy_never_deletes_a_system_namespace_even_if_labelled_and_recorded(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    apply_plan(kube, plan(), options())
    # Forge the worst case: kube-public carries the instance's labels and the parent claims to have created it.
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "kube-public", "labels": {**plan().labels, PART_OF_LABEL: applyset_id(f"applyset-{INSTANCE}", "default")}}})
    parent = fake_kube.get("v1", "Secret", f"applyset-{INSTANCE}", "default")
    parent["metadata"]["annotations"][CREATED_NAMESPACES_ANNOTATION] = f"kube-public,{NS}"
    fake_kube.put(parent)

    with pytest.raises(OperationError, match="left objects behind: Namespace/kube-public"):
        destroy_instance(kube, plan(database_drop=None, owned_namespaces=[NS, "kube-public"], protected_namespaces=[]),
                         destroy_options())
    assert fake_kube.get("v1", "Namespace", "kube-public") is not None
    assert not [r for r in fake_kube.requests if r.method == "DELETE" and r.path == "/api/v1/namespaces/kube-public"]
    assert fake_kube.get("v1", "Namespace", NS) is None


def test_prune_never_deletes_a_namespace_the_instance_did_not_create(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extra"}})
    objs = [*objects(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extra", "labels": plan().labels}}]
    apply_plan(kube, plan(objs), options(adopt=True))
    result = apply_plan(kube, plan(), options(dangerous_prune=True))
    assert "Namespace/extra" in result.skipped_prune and fake_kube.get("v1", "Namespace", "extra") is not None


# --- validate / render: the rule -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["namespace.name=default"], "namespace.name: Namespace default belongs to the cluster"),
        (["namespace.name=kube-system"], "namespace.name: namespace kube-system belongs to the cluster"),
        (["namespace.name=kube-node-lease"], "namespace.name: namespace kube-node-lease belongs to the cluster"),
    ],
)
def test_render_refuses_system_namespaces_at_the_spec_line_even_without_protected_namespaces(
    sets: list[str], needle: str
) -> None:
    args = ["render", "preview-pr", "--pr", "107", "--set", "protectedNamespaces=[]"]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if "[system-namespaces]" in line]
    assert lines and all(line.startswith(f"--set {sets[0]}: ") for line in lines), result.stderr
    assert any(needle in line for line in lines)
    assert result.stdout == ""


def test_validate_locates_a_gateway_namespace_in_kube_system_at_its_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["validate", "preview-base", "--set", "gateway.namespace=kube-system", "--set", "protectedNamespaces=[]"],
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    assert any("[system-namespaces]" in line and "kube-system" in line for line in result.stderr.splitlines())
