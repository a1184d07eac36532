"""The fake API server honours its contract when driven by the real clients.

Other tests trust FakeKube to behave like an apiserver; these tests pin the
behaviours they rely on, using the official client (typed and dynamic) over
HTTP and, for one round trip, kubectl itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

from tests.fakes.kube_server import FakeKube, label_matcher, fake_kube  # noqa: F401  (fixture)

MANAGER = "envspec"


def _api(fake: FakeKube, tmp_path: Path, *, retries: int | None = None) -> client.ApiClient:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    configuration.retries = retries  # None: urllib3's default Retry(3), which is what the code under test gets
    return client.ApiClient(configuration)


def _dynamic(fake: FakeKube, tmp_path: Path) -> DynamicClient:
    # A per-test discovery cache: the default one lives in /tmp keyed by host:port, which ports get reused for.
    return DynamicClient(_api(fake, tmp_path), cache_file=str(tmp_path / "discovery.json"))


def _deployment(name: str = "web", *, replicas: int = 2, labels: dict | None = None, image: str = "nginx:1",
                namespace: str = "default", resources: dict | None = None, init: bool = False) -> dict:
    container: dict = {"name": name, "image": image}
    if resources is not None:
        container["resources"] = resources
    pod_spec: dict = {"containers": [container]}
    if init:
        pod_spec["initContainers"] = [{"name": "db-migration", "image": image}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}


def _job(name: str = "migrate", image: str = "migrate:1") -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "migrate", "image": image}]}}}}


def _apply(dyn: DynamicClient, body: dict, manager: str = MANAGER, **kwargs):
    resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return dyn.server_side_apply(resource, body=body, field_manager=manager, **kwargs)


def _managers(obj: dict) -> dict[str, dict]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


# ---------------------------------------------------------------- discovery and config

def test_kubeconfig_selects_the_named_context_and_reaches_the_server(fake_kube: FakeKube, tmp_path: Path):
    kubeconfig = fake_kube.write_kubeconfig(tmp_path / "kc", context="preview", cluster="c1", user="u1")
    contexts, current = config.list_kube_config_contexts(str(kubeconfig))
    assert current["name"] == "preview" and current["context"]["cluster"] == "c1"
    api = config.new_client_from_config(str(kubeconfig), context="preview")
    assert api.configuration.host == fake_kube.url
    names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]


def test_dynamic_client_discovers_builtin_and_preinstalled_custom_kinds(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    assert dyn.version["kubernetes"]["minor"] == "32"
    deploy = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert (deploy.name, deploy.namespaced) == ("deployments", True)
    assert dyn.resources.get(api_version="v1", kind="Namespace").namespaced is False
    assert dyn.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole").namespaced is False
    route = dyn.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
    assert route.name == "httproutes"
    assert dyn.resources.get(api_version="cert-manager.io/v1", kind="ClusterIssuer").namespaced is False
    assert dyn.resources.get(api_version="external-secrets.io/v1beta1", kind="ExternalSecret").short_names == ["es"]
    assert "log" in dyn.resources.get(api_version="v1", kind="Pod").subresources


def test_a_crd_created_through_the_api_makes_its_kind_discoverable(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    applied = _apply(dyn, crd)
    assert {c["type"]: c["status"] for c in applied.to_dict()["status"]["conditions"]}["Established"] == "True"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
              "spec": {"size": 3}}
    _apply(dyn, widget)  # the dynamic client refreshes its discovery cache on a miss
    assert fake_kube.get("example.com/v1", "Widget", "w", "default")["spec"] == {"size": 3}
    listed = dyn.get(dyn.resources.get(api_version="example.com/v1", kind="Widget"), namespace="default")
    assert listed.to_dict()["items"][0]["kind"] == "Widget"  # custom resources keep kind on list items
    fake_kube.delete_direct("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    response = urllib3.PoolManager().request("GET", fake_kube.url + "/apis/example.com/v1/namespaces/default/widgets")
    assert response.status == 404


def test_kubectl_style_discovery_documents(fake_kube: FakeKube):
    http = urllib3.PoolManager()
    groups = json.loads(http.request("GET", fake_kube.url + "/apis").data)
    names = {g["name"] for g in groups["groups"]}
    assert {"apps", "batch", "gateway.networking.k8s.io", "cert-manager.io", "external-secrets.io"} <= names
    gateway = next(g for g in groups["groups"] if g["name"] == "gateway.networking.k8s.io")
    assert gateway["preferredVersion"]["version"] == "v1"
    core = json.loads(http.request("GET", fake_kube.url + "/api/v1").data)
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["singularName"] == "pod" and pods["namespaced"] is True and "list" in pods["verbs"]
    missing = http.request("GET", fake_kube.url + "/nothing/here")
    assert missing.status == 404 and json.loads(missing.data)["reason"] == "NotFound"
    assert http.request("GET", fake_kube.url + "/openapi/v3").status == 404


# ---------------------------------------------------------------- server-side apply

def test_apply_creates_then_updates_and_a_repeat_is_a_no_op(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    created = _apply(dyn, _deployment()).to_dict()
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    entry = _managers(created)[MANAGER]
    assert entry["operation"] == "Apply" and entry["fieldsType"] == "FieldsV1"
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert created["status"]["readyReplicas"] == 2 and created["status"]["observedGeneration"] == 1

    again = _apply(dyn, _deployment()).to_dict()
    assert again["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert again["metadata"]["generation"] == 1

    fake_kube.reset_requests()
    updated = _apply(dyn, _deployment(replicas=3)).to_dict()
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert updated["status"]["observedGeneration"] == 2 and updated["status"]["availableReplicas"] == 3
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 3
    [request] = fake_kube.requests
    assert request.method == "PATCH" and request.content_type == "application/apply-patch+yaml"
    assert request.query["fieldManager"] == [MANAGER] and request.body["spec"]["replicas"] == 3
    assert fake_kube.count("PATCH", "/deployments/web") == 1


def test_label_changes_bump_resource_version_but_not_generation(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    first = _apply(dyn, _deployment()).to_dict()
    second = _apply(dyn, _deployment(labels={"app": "web", "tier": "front"})).to_dict()
    assert second["metadata"]["generation"] == first["metadata"]["generation"]
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]


def test_fields_dropped_from_the_applied_config_are_removed_unless_someone_else_owns_them(
        fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "cfg", "namespace": "default", "labels": {"a": "1", "b": "2"}},
          "data": {"x": "1", "y": "2"}}
    _apply(dyn, cm)
    _apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "cfg", "namespace": "default", "labels": {"b": "2"}}}, manager="other")
    _apply(dyn, {**cm, "metadata": {"name": "cfg", "namespace": "default"}, "data": {"x": "1"}})
    live = fake_kube.get("v1", "ConfigMap", "cfg", "default")
    assert live["data"] == {"x": "1"}
    assert live["metadata"]["labels"] == {"b": "2"}  # "a" went; "b" stays because "other" owns it too


def test_apply_conflicts_with_another_manager_unless_forced(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    _apply(dyn, _deployment(replicas=2), manager="kubectl")
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, _deployment(replicas=5))
    assert caught.value.status == 409
    status = json.loads(caught.value.body)
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    assert status["details"]["causes"] == [{"type": "FieldManagerConflict", "message": 'conflict with "kubectl"',
                                            "field": ".spec.replicas"}]
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 2

    _apply(dyn, _deployment(replicas=2))  # the same value is shared ownership, not a conflict
    forced = _apply(dyn, _deployment(replicas=5), force_conflicts=True).to_dict()
    assert forced["spec"]["replicas"] == 5
    owners = _managers(forced)
    assert "f:replicas" in owners[MANAGER]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in owners["kubectl"]["fieldsV1"]["f:spec"]


def test_several_conflicts_are_listed_per_manager(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    _apply(dyn, _deployment(replicas=2, image="nginx:1"), manager="helm")
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, _deployment(replicas=3, image="nginx:2"))
    status = json.loads(caught.value.body)
    assert status["message"] == ('Apply failed with 2 conflicts: conflicts with "helm":\n'
                                 "- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image")
    assert sorted(c["field"] for c in status["details"]["causes"]) == [
        ".spec.replicas", '.spec.template.spec.containers[name="web"].image']


def test_a_field_taken_by_an_update_names_its_api_version_in_the_conflict(fake_kube: FakeKube, tmp_path: Path):
    api = _api(fake_kube, tmp_path)
    dyn = DynamicClient(api, cache_file=str(tmp_path / "d.json"))
    _apply(dyn, _deployment(replicas=2))
    client.AppsV1Api(api).patch_namespaced_deployment("web", "default", {"spec": {"replicas": 4}},
                                                      field_manager="kubectl")
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, _deployment(replicas=2))
    message = json.loads(caught.value.body)["message"]
    assert message == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'


def test_apply_without_field_manager_is_a_bad_request(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    resource = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    with pytest.raises(DynamicApiError) as caught:
        dyn.server_side_apply(resource, body=body)
    assert caught.value.status == 400 and "fieldManager" in json.loads(caught.value.body)["message"]


def test_apply_accepts_a_yaml_body(fake_kube: FakeKube):
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: default\ndata:\n  k: v\n"
    response = urllib3.PoolManager().request(
        "PATCH", fake_kube.url + "/api/v1/namespaces/default/configmaps/y?fieldManager=m", body=body,
        headers={"Content-Type": "application/apply-patch+yaml"})
    assert response.status == 200
    assert fake_kube.get("v1", "ConfigMap", "y", "default")["data"] == {"k": "v"}
    assert fake_kube.requests[-1].body["data"] == {"k": "v"}


def test_dry_run_returns_the_result_and_stores_nothing(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    would_be = _apply(dyn, _deployment(), dry_run="All").to_dict()
    assert would_be["spec"]["replicas"] == 2 and would_be["metadata"]["name"] == "web"
    assert fake_kube.get("apps/v1", "Deployment", "web", "default") is None
    _apply(dyn, _deployment())
    _apply(dyn, _deployment(replicas=9), dry_run="All")
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 2


def test_job_template_is_immutable(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    job = _apply(dyn, _job()).to_dict()
    assert job["status"]["succeeded"] == 1
    assert "Complete" in [c["type"] for c in job["status"]["conditions"]]
    _apply(dyn, _job())  # re-applying the same template is fine
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, _job(image="migrate:2"))
    status = json.loads(caught.value.body)
    assert caught.value.status == 422 and status["reason"] == "Invalid"
    assert "field is immutable" in status["message"] and status["message"].startswith('Job.batch "migrate"')
    assert status["details"]["causes"][0]["field"] == "spec.template"


def test_job_gets_a_pod_that_goes_away_with_it(fake_kube: FakeKube, tmp_path: Path):
    api = _api(fake_kube, tmp_path)
    dyn = DynamicClient(api, cache_file=str(tmp_path / "d.json"))
    _apply(dyn, _job())
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod("default", label_selector="job-name=migrate").items
    assert len(pods) == 1 and pods[0].status.phase == "Succeeded"
    assert pods[0].metadata.owner_references[0].kind == "Job"
    client.BatchV1Api(api).delete_namespaced_job("migrate", "default", propagation_policy="Background")
    assert core.list_namespaced_pod("default").items == []
    assert fake_kube.get("batch/v1", "Job", "migrate", "default") is None


# ---------------------------------------------------------------- typed CRUD

def test_create_get_replace_delete_with_the_typed_client(fake_kube: FakeKube, tmp_path: Path):
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c", namespace="default"), data={"a": "1"})
    created = core.create_namespaced_config_map("default", body)
    assert created.metadata.uid and created.data == {"a": "1"}
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map("default", body)
    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"

    created.data = {"a": "2"}
    replaced = core.replace_namespaced_config_map("c", "default", created)
    assert replaced.data == {"a": "2"}
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("c", "default", created)  # carries the old resourceVersion
    assert stale.value.status == 409 and "the object has been modified" in json.loads(stale.value.body)["message"]

    patched = core.patch_namespaced_config_map("c", "default", {"metadata": {"annotations": {"x": "y"}}})
    assert patched.metadata.annotations == {"x": "y"} and patched.data == {"a": "2"}
    core.delete_namespaced_config_map("c", "default")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("c", "default")
    assert gone.value.status == 404
    assert json.loads(gone.value.body)["message"] == 'configmaps "c" not found'
    with pytest.raises(ApiException) as again:
        core.delete_namespaced_config_map("c", "default")
    assert again.value.status == 404


def test_writes_into_a_missing_namespace_are_refused(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, _deployment(namespace="nowhere"))
    assert caught.value.status == 404 and 'namespaces "nowhere" not found' in json.loads(caught.value.body)["message"]


def test_bad_bodies_are_rejected_with_400(fake_kube: FakeKube):
    http = urllib3.PoolManager()
    url = fake_kube.url + "/api/v1/namespaces/default/configmaps"
    garbage = http.request("POST", url, body=b"{not: [json", headers={"Content-Type": "application/json"})
    assert garbage.status == 400 and json.loads(garbage.data)["kind"] == "Status"
    wrong_kind = http.request("POST", url, body=json.dumps({"kind": "Secret", "metadata": {"name": "s"}}).encode(),
                              headers={"Content-Type": "application/json"})
    assert wrong_kind.status == 400


def test_lists_look_like_real_lists(fake_kube: FakeKube, tmp_path: Path):
    api = _api(fake_kube, tmp_path)
    _apply(DynamicClient(api, cache_file=str(tmp_path / "d.json")), _deployment())
    raw = json.loads(urllib3.PoolManager().request(
        "GET", fake_kube.url + "/apis/apps/v1/deployments").data)
    assert raw["kind"] == "DeploymentList" and raw["apiVersion"] == "apps/v1"
    assert raw["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in raw["items"]] == ["web"]
    assert "kind" not in raw["items"][0]  # like the real server, built-in list items carry no kind
    typed = client.AppsV1Api(api).list_deployment_for_all_namespaces()
    assert [d.metadata.name for d in typed.items] == ["web"]


# ---------------------------------------------------------------- selectors

@pytest.mark.parametrize("selector, expected", [
    ("tier=web", ["a", "b"]),
    ("tier==web", ["a", "b"]),
    ("tier!=web", ["c", "d"]),
    ("tier in (web,db)", ["a", "b", "c"]),
    ("tier notin (web)", ["c", "d"]),
    ("env", ["a", "c"]),
    ("!env", ["b", "d"]),
    ("tier=web,env=prod", ["a"]),
    ("tier in (web, db),!env", ["b"]),
    ("", ["a", "b", "c", "d"]),
])
def test_label_selectors(fake_kube: FakeKube, tmp_path: Path, selector: str, expected: list[str]):
    labels = {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "web"}, "c": {"tier": "db", "env": "dev"}, "d": {}}
    for name, lb in labels.items():
        fake_kube.put({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": "default", "labels": lb}})
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    found = core.list_namespaced_config_map("default", label_selector=selector or None).items
    assert [cm.metadata.name for cm in found] == expected
    assert [o["metadata"]["name"] for o in fake_kube.list("v1", "ConfigMap", "default", selector)] == expected


def test_invalid_label_selector_is_a_bad_request(fake_kube: FakeKube, tmp_path: Path):
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map("default", label_selector="a in b")
    assert caught.value.status == 400
    with pytest.raises(Exception):
        label_matcher("!a=b")


def test_field_selectors_on_names_and_events(fake_kube: FakeKube, tmp_path: Path):
    fake_kube.add_event("default", involved_kind="ReplicaSet", involved_name="web-1", reason="FailedCreate",
                        message="boom")
    fake_kube.add_event("default", involved_kind="Pod", involved_name="api-1", reason="BackOff", message="crash")
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    events = core.list_namespaced_event(
        "default", field_selector="involvedObject.name=web-1,involvedObject.kind=ReplicaSet").items
    assert [(e.reason, e.message, e.type) for e in events] == [("FailedCreate", "boom", "Warning")]
    assert [e.reason for e in core.list_event_for_all_namespaces(field_selector="involvedObject.kind!=Pod").items] \
        == ["FailedCreate"]
    names = core.list_namespace(field_selector="metadata.name=default").items
    assert [n.metadata.name for n in names] == ["default"]


# ---------------------------------------------------------------- namespaces

def test_deleting_a_namespace_cascades_at_once(fake_kube: FakeKube, tmp_path: Path):
    api = _api(fake_kube, tmp_path)
    dyn = DynamicClient(api, cache_file=str(tmp_path / "d.json"))
    _apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "preview-pr-107"}})
    _apply(dyn, _deployment(namespace="preview-pr-107"))
    _apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k", "namespace": "default"}})
    client.CoreV1Api(api).delete_namespace("preview-pr-107")
    assert fake_kube.get("v1", "Namespace", "preview-pr-107") is None
    assert fake_kube.list("apps/v1", "Deployment") == []
    assert fake_kube.get("v1", "ConfigMap", "k", "default") is not None


def test_a_stuck_namespace_waits_for_finalize(fake_kube: FakeKube, tmp_path: Path):
    api = _api(fake_kube, tmp_path)
    core = client.CoreV1Api(api)
    dyn = DynamicClient(api, cache_file=str(tmp_path / "d.json"))
    fake_kube.stuck_namespaces.add("stuck")
    _apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "stuck"}})
    _apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k", "namespace": "stuck"}})
    core.delete_namespace("stuck")
    ns = core.read_namespace("stuck")
    assert ns.status.phase == "Terminating" and ns.spec.finalizers == ["kubernetes"]
    assert ns.metadata.deletion_timestamp is not None
    with pytest.raises(DynamicApiError) as refused:
        _apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "stuck"}})
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == ('configmaps "new" is forbidden: unable to create new '
                                                         "content in namespace stuck because it is being terminated")

    ns.spec.finalizers = []
    core.replace_namespace_finalize("stuck", ns)
    with pytest.raises(ApiException) as gone:
        core.read_namespace("stuck")
    assert gone.value.status == 404
    assert fake_kube.get("v1", "ConfigMap", "k", "stuck") is None
    assert fake_kube.count("PUT", "/api/v1/namespaces/stuck/finalize") == 1


# ---------------------------------------------------------------- faults

def test_a_429_fault_carries_retry_after_which_urllib3_honours_by_itself(fake_kube: FakeKube, tmp_path: Path):
    # Worth knowing for retry code: with default retries, urllib3 retries a 429 that has Retry-After on its own.
    fake_kube.add_fault(method="GET", path_regex=r"/namespaces$", status=429)
    assert len(client.CoreV1Api(_api(fake_kube, tmp_path)).list_namespace().items) == 4
    assert fake_kube.count("GET", "/api/v1/namespaces") == 2

    core = client.CoreV1Api(_api(fake_kube, tmp_path, retries=0))
    fake_kube.add_fault(method="GET", path_regex=r"/namespaces$", status=429)
    with pytest.raises(ApiException) as caught:
        core.list_namespace()
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "0"
    assert json.loads(caught.value.body)["reason"] == "TooManyRequests"
    assert len(core.list_namespace().items) == 4


def test_a_500_fault_repeats_then_clears_and_only_matches_its_path(fake_kube: FakeKube, tmp_path: Path):
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    fake_kube.add_fault(path_regex="/configmaps", status=500, times=2)
    assert core.read_namespace("default").metadata.name == "default"  # not matched
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            core.list_namespaced_config_map("default")
        assert caught.value.status == 500 and json.loads(caught.value.body)["reason"] == "InternalError"
    assert core.list_namespaced_config_map("default").items == []


def test_a_409_fault_uses_the_given_body(fake_kube: FakeKube, tmp_path: Path):
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    fake_kube.add_fault(method="GET", status=409, body={"kind": "Status", "reason": "Conflict", "message": "x"})
    with pytest.raises(ApiException) as caught:
        core.read_namespace("default")
    assert caught.value.status == 409 and json.loads(caught.value.body)["message"] == "x"


def test_a_delay_fault_makes_the_client_time_out(fake_kube: FakeKube, tmp_path: Path):
    core = client.CoreV1Api(_api(fake_kube, tmp_path, retries=0))
    fake_kube.add_fault(method="GET", delay=2.0)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace(_request_timeout=0.2)
    assert time.monotonic() - started < 1.5
    assert len(core.list_namespace(_request_timeout=2).items) == 4


# ---------------------------------------------------------------- logs, pods, status helpers

def test_pod_logs_with_tail_lines(fake_kube: FakeKube, tmp_path: Path):
    fake_kube.add_pod("default", "migrate-x", labels={"job-name": "migrate"}, owner_kind="Job",
                      owner_name="migrate", phase="Failed",
                      container_statuses=[{"name": "migrate", "ready": False, "restartCount": 0, "image": "m",
                                           "imageID": "", "state": {"terminated": {"exitCode": 1}}}])
    fake_kube.set_pod_log("default", "migrate-x", "one\ntwo\nthree\n")
    core = client.CoreV1Api(_api(fake_kube, tmp_path))
    assert core.read_namespaced_pod_log("migrate-x", "default") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("migrate-x", "default", tail_lines=2) == "two\nthree\n"
    pod = core.read_namespaced_pod("migrate-x", "default")
    assert pod.status.container_statuses[0].state.terminated.exit_code == 1
    assert pod.metadata.owner_references[0].name == "migrate"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("nope", "default")
    assert missing.value.status == 404


def test_auto_ready_statuses_for_custom_kinds(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    route = _apply(dyn, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                         "metadata": {"name": "r", "namespace": "default"},
                         "spec": {"parentRefs": [{"name": "gw", "namespace": "gateway"}]}}).to_dict()
    [parent] = route["status"]["parents"]
    assert parent["parentRef"] == {"name": "gw", "namespace": "gateway"}
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}
    cert = _apply(dyn, {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                        "metadata": {"name": "c", "namespace": "default"}, "spec": {"secretName": "tls"}}).to_dict()
    assert cert["status"]["conditions"][0] == {**cert["status"]["conditions"][0], "type": "Ready", "status": "True"}
    gw = _apply(dyn, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                      "metadata": {"name": "gw", "namespace": "default"}, "spec": {}}).to_dict()
    assert {c["type"] for c in gw["status"]["conditions"]} == {"Accepted", "Programmed"}


def test_load_balancer_ip_appears_only_when_set(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw", "namespace": "default"},
           "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}
    assert "ingress" not in _apply(dyn, svc).to_dict().get("status", {}).get("loadBalancer", {})
    fake_kube.set_status("v1", "Service", "gw", "default", {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}})
    core = client.CoreV1Api(dyn.client)
    assert core.read_namespaced_service("gw", "default").status.load_balancer.ingress[0].ip == "203.0.113.7"
    _apply(dyn, svc)  # re-applying keeps what the "cloud controller" reported
    assert fake_kube.get("v1", "Service", "gw", "default")["status"]["loadBalancer"]["ingress"][0]["ip"] \
        == "203.0.113.7"


def test_without_auto_ready_workloads_stay_unready_until_set(tmp_path: Path):
    with FakeKube(auto_ready=False) as fake:
        dyn = _dynamic(fake, tmp_path)
        created = _apply(dyn, _deployment()).to_dict()
        assert "status" not in created
        assert fake.list("v1", "Pod") == []
        fake.set_status("apps/v1", "Deployment", "web", "default", {"readyReplicas": 2})
        assert fake.get("apps/v1", "Deployment", "web", "default")["status"] == {"readyReplicas": 2}


def test_registered_and_seeded_crd_kinds_are_served(fake_kube: FakeKube, tmp_path: Path):
    fake_kube.register_crd_kind("example.com", "v1alpha1", "Gadget", "gadgets", namespaced=False)
    fake_kube.put({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "things.example.com"},
                   "spec": {"group": "example.com", "scope": "Namespaced",
                            "names": {"kind": "Thing", "plural": "things"},
                            "versions": [{"name": "v1", "served": True, "storage": True}]}})
    dyn = _dynamic(fake_kube, tmp_path)
    assert dyn.resources.get(api_version="example.com/v1alpha1", kind="Gadget").namespaced is False
    _apply(dyn, {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "namespace": "default"}})
    assert [t["metadata"]["name"] for t in fake_kube.list("example.com/v1", "Thing")] == ["t"]


def test_delete_direct_and_put_skip_the_request_log(fake_kube: FakeKube):
    fake_kube.put(_job())
    assert fake_kube.get("batch/v1", "Job", "migrate", "default")["metadata"]["uid"]
    fake_kube.delete_direct("batch/v1", "Job", "migrate", "default")
    assert fake_kube.get("batch/v1", "Job", "migrate", "default") is None
    assert fake_kube.requests == [] and fake_kube.count() == 0


# ---------------------------------------------------------------- quota

def test_quota_enforcement_blocks_containers_without_limits(tmp_path: Path):
    with FakeKube(quota_enforcement=True) as fake:
        dyn = _dynamic(fake, tmp_path)
        _apply(dyn, {"apiVersion": "v1", "kind": "ResourceQuota",
                     "metadata": {"name": "preview-quota", "namespace": "default"},
                     "spec": {"hard": {"limits.cpu": "2", "limits.memory": "2Gi", "pods": "10"}}})
        limited = {"limits": {"cpu": "100m", "memory": "64Mi"}}
        good = _apply(dyn, _deployment("web", resources=limited)).to_dict()
        assert good["status"]["readyReplicas"] == 2
        bad = _apply(dyn, _deployment("api", resources=limited, init=True)).to_dict()
        assert bad["status"]["readyReplicas"] == 0
        failure = next(c for c in bad["status"]["conditions"] if c["type"] == "ReplicaFailure")
        assert "must specify limits.cpu for: db-migration; limits.memory for: db-migration" in failure["message"]
        [rs] = fake.list("apps/v1", "ReplicaSet", "default")
        [event] = fake.list("v1", "Event", "default")
        assert event["involvedObject"] == {**event["involvedObject"], "kind": "ReplicaSet",
                                           "name": rs["metadata"]["name"]}
        assert event["reason"] == "FailedCreate" and event["type"] == "Warning"
        assert event["message"] == (f'Error creating: pods "{rs["metadata"]["name"]}-" is forbidden: failed quota: '
                                    "preview-quota: must specify limits.cpu for: db-migration; "
                                    "limits.memory for: db-migration")


def test_limit_range_defaults_satisfy_the_quota(tmp_path: Path):
    with FakeKube(quota_enforcement=True) as fake:
        dyn = _dynamic(fake, tmp_path)
        _apply(dyn, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "default"},
                     "spec": {"hard": {"requests.cpu": "1", "limits.memory": "1Gi"}}})
        _apply(dyn, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "default"},
                     "spec": {"limits": [{"type": "Container", "default": {"cpu": "100m", "memory": "64Mi"}}]}})
        assert _apply(dyn, _deployment(init=True)).to_dict()["status"]["readyReplicas"] == 2


def test_concurrent_applies_are_all_stored(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    resource = dyn.resources.get(api_version="v1", kind="ConfigMap")

    def apply(i: int) -> None:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "default"}}
        dyn.server_side_apply(resource, body=body, field_manager=MANAGER)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(apply, range(24)))
    assert len(fake_kube.list("v1", "ConfigMap", "default")) == 24
    uids = {o["metadata"]["uid"] for o in fake_kube.list("v1", "ConfigMap")}
    assert len(uids) == 24


# ---------------------------------------------------------------- kubectl

def _kubectl(fake: FakeKube, tmp_path: Path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH; the kubectl round trip needs it")
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "KUBECTL_APPLYSET": "true"})
    return run


def test_kubectl_server_side_apply_and_get_round_trip(fake_kube: FakeKube, tmp_path: Path):
    run = _kubectl(fake_kube, tmp_path)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: demo, labels: {app: web}}\n"
        "data: {a: '1'}\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: demo}\n"
        "spec: {parentRefs: [{name: gw}]}\n")

    applied = run("apply", "--server-side", "--validate=false", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "configmap/cfg serverside-applied" in applied.stdout
    assert "httproute.gateway.networking.k8s.io/r serverside-applied" in applied.stdout
    assert _managers(fake_kube.get("v1", "ConfigMap", "cfg", "demo"))["kubectl"]["operation"] == "Apply"

    table = run("get", "configmaps", "-n", "demo", "-l", "app=web")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[0] == "cfg"
    as_json = run("get", "httproute", "r", "-n", "demo", "-o", "json")
    assert json.loads(as_json.stdout)["spec"]["parentRefs"] == [{"name": "gw"}]

    deleted = run("delete", "namespace", "demo")
    assert deleted.returncode == 0, deleted.stderr
    assert fake_kube.get("v1", "ConfigMap", "cfg", "demo") is None


def test_kubectl_applyset_prune_works_against_the_fake(fake_kube: FakeKube, tmp_path: Path):
    # kubectl's own ApplySet is the reference envspec's inventory follows; it must run here unchanged.
    run = _kubectl(fake_kube, tmp_path)
    both, one = tmp_path / "both.yaml", tmp_path / "one.yaml"
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: default}\ndata: {a: '1'}\n"
    both.write_text(cm + "---\n" + yaml.safe_dump(_deployment()))
    one.write_text(cm)
    flags = ["apply", "--server-side", "--validate=false", "--prune", "--applyset=secret/inst", "-n", "default"]
    first = run(*flags, "-f", str(both))
    assert first.returncode == 0, first.stderr
    second = run(*flags, "-f", str(one))
    assert second.returncode == 0, second.stderr
    assert "deployment.apps/web pruned" in second.stdout
    assert fake_kube.get("apps/v1", "Deployment", "web", "default") is None
    parent = fake_kube.get("v1", "Secret", "inst", "default")
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == "ConfigMap"
    assert parent["metadata"]["labels"]["applyset.kubernetes.io/id"].startswith("applyset-")


# ---------------------------------------------------------------- merge semantics from the upstream definitions
# The rules below are the real apiserver's (structured-merge-diff and strategic merge patch), driven by the
# x-kubernetes-* extensions of the definitions kubernetes-validate ships: if the fake drifts from them,
# envspec's change detection would be tested against a server that does not exist.

def _container(obj: dict, name: str = "web") -> dict:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def test_apply_owns_list_items_by_their_map_keys(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    body = _deployment()
    _container(body)["ports"] = [{"containerPort": 80}]
    _container(body)["env"] = [{"name": "A", "value": "1"}]
    _container(body)["args"] = ["serve"]
    _apply(dyn, body)
    fields = _managers(fake_kube.get("apps/v1", "Deployment", "web", "default"))[MANAGER]["fieldsV1"]
    assert fields["f:spec"]["f:selector"] == {}  # a LabelSelector is an atomic map
    item = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert item == {".": {}, "f:name": {}, "f:image": {}, "f:args": {},
                    "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                    "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}}}


def test_apply_removes_a_field_the_manager_stopped_setting_inside_a_list_item(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    body = _deployment()
    _container(body)["readinessProbe"] = {"httpGet": {"path": "/", "port": 80}}
    _container(body)["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    _apply(dyn, body)
    del _container(body)["readinessProbe"]
    _container(body)["env"] = [{"name": "B", "value": "2"}]
    _apply(dyn, body)
    live = _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))
    assert "readinessProbe" not in live
    assert live["env"] == [{"name": "B", "value": "2"}]
    assert live["image"] == "nginx:1"


def test_fields_another_manager_owns_inside_a_list_item_survive_and_conflict_per_field(
        fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    _apply(dyn, _deployment())
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"template": {"spec": {"containers": [
                   {"name": "web", "imagePullPolicy": "Always"}, {"name": "proxy", "image": "envoy:1"}]}}}}
    _apply(dyn, sidecar, manager="mesh")
    live = fake_kube.get("apps/v1", "Deployment", "web", "default")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["web", "proxy"]
    assert _container(live)["imagePullPolicy"] == "Always" and _container(live)["image"] == "nginx:1"

    _apply(dyn, _deployment(image="nginx:2"))  # envspec's own fields: no conflict, the mesh's fields stay
    live = fake_kube.get("apps/v1", "Deployment", "web", "default")
    assert _container(live) == {"name": "web", "image": "nginx:2", "imagePullPolicy": "Always"}
    assert _container(live, "proxy")["image"] == "envoy:1"

    taken = _deployment(image="nginx:2")
    _container(taken)["imagePullPolicy"] = "IfNotPresent"
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, taken)
    status = json.loads(caught.value.body)
    assert status["details"]["causes"] == [{"type": "FieldManagerConflict", "message": 'conflict with "mesh"',
                                            "field": '.spec.template.spec.containers[name="web"].imagePullPolicy'}]
    same = _deployment(image="nginx:2")
    _container(same)["imagePullPolicy"] = "Always"  # the same value is shared ownership, not a conflict
    _apply(dyn, same)
    _apply(dyn, _deployment(image="nginx:2"))  # dropping a shared field leaves it with the other owner
    assert _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))["imagePullPolicy"] == "Always"


def test_sets_and_atomic_lists(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default",
                                                              "finalizers": ["a/x"]}, "data": {"k": "v"}}
    _apply(dyn, cm)
    _apply(dyn, {**cm, "metadata": {**cm["metadata"], "finalizers": ["b/y"]}}, manager="other")
    assert fake_kube.get("v1", "ConfigMap", "c", "default")["metadata"]["finalizers"] == ["a/x", "b/y"]  # a set
    body = _deployment()
    _container(body)["args"] = ["a", "b"]
    _apply(dyn, body)
    _container(body)["args"] = ["c"]
    _apply(dyn, body)
    assert _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))["args"] == ["c"]  # atomic: replaced


def test_quantities_are_stored_in_canonical_form(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    resources = {"requests": {"cpu": "0.25", "memory": "1024Mi"}, "limits": {"cpu": 1, "memory": "1.5Gi"}}
    _apply(dyn, _deployment(resources=resources))
    stored = _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))["resources"]
    assert stored == {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1536Mi"}}
    rv = fake_kube.get("apps/v1", "Deployment", "web", "default")["metadata"]["resourceVersion"]
    _apply(dyn, _deployment(resources=resources))  # the same values again: a no-op, not a conflict
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["metadata"]["resourceVersion"] == rv
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, _deployment(resources={"limits": {"cpu": "lots"}}))
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["message"].startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: quantities must match the regular expression')


def test_strategic_merge_patch_merges_lists_by_their_patch_merge_key(fake_kube: FakeKube, tmp_path: Path):
    api = client.AppsV1Api(_api(fake_kube, tmp_path))
    body = _deployment()
    _container(body)["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    _container(body)["args"] = ["x"]
    fake_kube.put(body)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "env": [{"name": "A", "value": "9"}, {"name": "B", "$patch": "delete"},
                                {"name": "C", "value": "3"}], "args": ["y"]},
        {"name": "proxy", "image": "envoy:1"}]}}}}
    api.patch_namespaced_deployment("web", "default", patch)  # the typed client sends strategic merge patch
    live = fake_kube.get("apps/v1", "Deployment", "web", "default")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["web", "proxy"]
    assert _container(live)["env"] == [{"name": "A", "value": "9"}, {"name": "C", "value": "3"}]
    assert _container(live)["args"] == ["y"] and _container(live)["image"] == "nginx:1"
    replace = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "i"}]}}}}
    api.patch_namespaced_deployment("web", "default", replace)
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["spec"]["template"]["spec"]["containers"] == [
        {"name": "only", "image": "i"}]
    api.patch_namespaced_deployment("web", "default", {"spec": {"template": {"metadata": {"$patch": "replace",
                                                                                          "labels": {"n": "1"}}}}})
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["spec"]["template"]["metadata"] == {
        "labels": {"n": "1"}}


def test_strategic_merge_patch_is_refused_for_custom_resources(fake_kube: FakeKube, tmp_path: Path):
    fake_kube.put({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                   "metadata": {"name": "r", "namespace": "default"}, "spec": {"hostnames": ["a"]}})
    response = urllib3.PoolManager().request(
        "PATCH", fake_kube.url + "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/r",
        body=json.dumps({"spec": {"hostnames": ["b"]}}),
        headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert response.status == 415
    assert fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "r", "default")["spec"]["hostnames"] == ["a"]


def test_a_crd_schema_with_a_map_list_type_keys_its_items(fake_kube: FakeKube, tmp_path: Path):
    listeners = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                 "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                            "port": {"type": "integer"}}}}
    fake_kube.put({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"},
                   "spec": {"group": "example.com", "scope": "Namespaced",
                            "names": {"kind": "Widget", "plural": "widgets"},
                            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                                "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                                    "type": "object", "properties": {"listeners": listeners}}}}}}]}})
    dyn = _dynamic(fake_kube, tmp_path)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
              "spec": {"listeners": [{"name": "a", "port": 1}]}}
    _apply(dyn, widget)
    _apply(dyn, {**widget, "spec": {"listeners": [{"name": "b", "port": 2}]}}, manager="other")
    live = fake_kube.get("example.com/v1", "Widget", "w", "default")
    assert live["spec"]["listeners"] == [{"name": "a", "port": 1}, {"name": "b", "port": 2}]
    assert 'k:{"name":"a"}' in _managers(live)[MANAGER]["fieldsV1"]["f:spec"]["f:listeners"]
    # Without a schema (the preinstalled Gateway API kinds here) lists stay atomic, as on a server without one.
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "default"}, "spec": {"hostnames": ["a"]}}
    _apply(dyn, route)
    assert _managers(fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "r", "default"))[MANAGER][
        "fieldsV1"] == {"f:spec": {"f:hostnames": {}}}


def test_kubectl_server_side_apply_removes_a_dropped_field_inside_a_list_item(fake_kube: FakeKube, tmp_path: Path):
    run = _kubectl(fake_kube, tmp_path)
    body = _deployment()
    _container(body)["readinessProbe"] = {"httpGet": {"path": "/", "port": 80}}
    _container(body)["resources"] = {"limits": {"cpu": "0.5", "memory": "1024Mi"}}
    manifest = tmp_path / "d.yaml"
    manifest.write_text(yaml.safe_dump(body))
    first = run("apply", "--server-side", "--validate=false", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    live = _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))
    assert live["readinessProbe"] and live["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"}}
    del _container(body)["readinessProbe"]
    manifest.write_text(yaml.safe_dump(body))
    second = run("apply", "--server-side", "--validate=false", "-f", str(manifest))
    assert second.returncode == 0, second.stderr
    assert "readinessProbe" not in _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))

    patched = run("patch", "deployment", "web", "-n", "default", "--type", "strategic", "-p",
                  json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [
                      {"name": "A", "value": "1"}]}]}}}}))
    assert patched.returncode == 0, patched.stderr
    live = fake_kube.get("apps/v1", "Deployment", "web", "default")
    assert _container(live)["env"] == [{"name": "A", "value": "1"}] and _container(live)["image"] == "nginx:1"
    assert _managers(live)["kubectl-patch"]["operation"] == "Update"


def test_apply_refuses_keyed_items_without_a_key_or_with_the_same_key(fake_kube: FakeKube, tmp_path: Path):
    dyn = _dynamic(fake_kube, tmp_path)
    body = _deployment()
    _container(body)["env"] = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, body)
    assert caught.value.status == 422
    assert 'duplicate entries for key [name="A"]' in json.loads(caught.value.body)["message"]
    _container(body)["env"] = [{"value": "1"}]
    with pytest.raises(DynamicApiError) as caught:
        _apply(dyn, body)
    assert 'omits key field "name"' in json.loads(caught.value.body)["message"]
    assert fake_kube.get("apps/v1", "Deployment", "web", "default") is None


def test_kubectl_client_side_apply_deletes_a_list_item_by_strategic_merge_patch(fake_kube: FakeKube, tmp_path: Path):
    run = _kubectl(fake_kube, tmp_path)
    body = _deployment()
    _container(body)["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    manifest = tmp_path / "d.yaml"
    manifest.write_text(yaml.safe_dump(body))
    assert run("apply", "--validate=false", "-f", str(manifest)).returncode == 0
    _container(body)["env"] = [{"name": "B", "value": "3"}]
    manifest.write_text(yaml.safe_dump(body))
    second = run("apply", "--validate=false", "-f", str(manifest))
    assert second.returncode == 0, second.stderr
    patch = next(r for r in fake_kube.requests if r.method == "PATCH")
    assert patch.content_type == "application/strategic-merge-patch+json"  # with $patch: delete for "A"
    assert _container(fake_kube.get("apps/v1", "Deployment", "web", "default"))["env"] == [{"name": "B", "value": "3"}]


def test_strategic_merge_patch_directives_for_primitive_lists_and_retained_keys(fake_kube: FakeKube):
    from envspec.apidefs import type_of
    from tests.fakes.kube_server import strategic_merge

    t = type_of("apps/v1", "Deployment")
    live = {"metadata": {"finalizers": ["a", "b"]},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patched = strategic_merge(live, {"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
                                     "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, t)
    assert patched["metadata"]["finalizers"] == ["b", "c"]  # finalizers merge as a set of strings
    assert patched["spec"]["strategy"] == {"type": "Recreate"}  # retainKeys drops rollingUpdate
    assert strategic_merge(live, {"spec": {"strategy": None}}, t)["spec"] == {}
