"""envspec's change detection compares desired and live state the way server-side apply does.

The bug this guards (issue 9): a field removed inside a list item (the web container's readiness
probe) was never applied and `diff` hid it, because a keyed list item counted as one owned leaf.
Quantities the server canonicalises (`0.25` -> `250m`) must not read as a change either.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envspec import quantity
from envspec.kube.fieldset import decode, encode, fieldset, same_values
from envspec.kube.ssa import dropped_fields, needs_apply
from envspec.apidefs import TypeInfo, type_of
from tests.fakes.kube_server import FakeKube
from tests.test_kube_cli import NS, pr_cmd, writes
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    deployment,
    fake_kube,
    kubeconfig,
    seed_shared_infrastructure,
)

pytestmark = pytest.mark.usefixtures("repo_root")
NO_PROBE = ["--set", "apps.web.containers.web.readiness=null"]


def _web(fake: FakeKube) -> dict:
    containers = fake.get("apps/v1", "Deployment", "web", NS)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "web")


def test_removing_a_field_inside_a_list_item_is_applied_and_shown_by_diff(
    fake_kube: FakeKube, kubeconfig: Path  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    assert "readinessProbe" in _web(fake_kube)

    diff = pr_cmd("diff", kubeconfig, *NO_PROBE)
    assert diff.exit_code == 1, diff.stderr
    assert f"Deployment/{NS}/web" in diff.stdout
    removed = [line for line in diff.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert any("readinessProbe:" in line for line in removed), diff.stdout
    assert not any(line.startswith("+") and "readinessProbe" in line for line in diff.stdout.splitlines())

    fake_kube.reset_requests()
    changed = pr_cmd("apply", kubeconfig, *NO_PROBE)
    assert changed.exit_code == 0, changed.stderr
    assert f"updated Deployment/{NS}/web" in changed.stderr
    assert " 1 updated," in changed.stdout
    assert "readinessProbe" not in _web(fake_kube)
    assert _web(fake_kube)["image"].startswith("ghcr.io/aphiria/aphiria.com-web@sha256:")  # the rest stays

    fake_kube.reset_requests()
    again = pr_cmd("apply", kubeconfig, *NO_PROBE)
    assert again.exit_code == 0 and " 0 updated," in again.stdout and " 0 created," in again.stdout
    assert writes(fake_kube) == []
    assert pr_cmd("diff", kubeconfig, *NO_PROBE).exit_code == 0

    back = pr_cmd("apply", kubeconfig)  # and the probe comes back when the spec sets it again
    assert back.exit_code == 0 and "readinessProbe" in _web(fake_kube)


def test_a_no_op_re_apply_of_preview_pr_writes_nothing(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    fake_kube.reset_requests()
    noop = pr_cmd("apply", kubeconfig)
    assert noop.exit_code == 0 and " 0 updated," in noop.stdout
    assert writes(fake_kube) == []


# --- needs_apply on objects shaped by hand ----------------------------------------------------


def _applied(fake: FakeKube, obj: dict, manager: str = "envspec") -> dict:
    """Apply `obj` through the fake's own server-side apply and return the stored object."""
    from tests.fakes.kube_server import apply_fields

    live = fake.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
    live = live or {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                    "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"].get("namespace")}}
    assert apply_fields(live, obj, manager, obj["apiVersion"], force=False,
                        schema=type_of(obj["apiVersion"], obj["kind"])) == []
    return live


def test_needs_apply_sees_a_field_dropped_inside_a_keyed_list_item() -> None:
    fake = FakeKube()
    obj = deployment("web")
    obj["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/", "port": 80}}
    live = _applied(fake, obj)
    assert not needs_apply(obj, live)

    dropped = copy.deepcopy(obj)
    del dropped["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert needs_apply(dropped, live)
    assert dropped_fields(dropped, live) == [
        '.spec.template.spec.containers[name="web"].readinessProbe.httpGet.path',
        '.spec.template.spec.containers[name="web"].readinessProbe.httpGet.port',
    ]


def test_canonical_quantities_from_the_server_are_not_a_change() -> None:
    obj = deployment("web")
    resources = obj["spec"]["template"]["spec"]["containers"][0]["resources"]
    resources["requests"] = {"cpu": "0.25", "memory": "1024Mi"}
    live = _applied(FakeKube(), obj)
    stored = live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert stored == {"cpu": "250m", "memory": "1Gi"}  # what a real server answers
    assert not needs_apply(obj, live)
    more = copy.deepcopy(obj)
    more["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "0.3"
    assert needs_apply(more, live)


def test_keyed_items_compare_by_key_not_by_position() -> None:
    t = type_of("apps/v1", "Deployment").field("spec").field("template").field("spec").field("containers")
    desired = [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]
    live = [{"name": "b", "image": "y", "imagePullPolicy": "IfNotPresent"}, {"name": "a", "image": "x"}]
    assert same_values(desired, live, t)
    assert not same_values([{"name": "a", "image": "z"}], live, t)
    env = t.item().field("env")
    assert same_values([{"name": "A", "value": "1"}], [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}], env)
    args = t.item().field("args")  # atomic: order and length matter
    assert not same_values(["a", "b"], ["b", "a"], args)
    assert not same_values(["a"], ["a", "b"], args)


def test_field_sets_follow_the_upstream_list_types() -> None:
    t = type_of("apps/v1", "Deployment")
    spec = {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [
        {"name": "web", "args": ["a"], "ports": [{"containerPort": 80}]}]}}},
        "metadata": {"finalizers": ["x"]}}
    paths = fieldset(spec, t)
    container = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    assert paths == {
        ("f:spec", "f:selector"),  # a LabelSelector is an atomic map
        container, container + ("f:name",), container + ("f:args",),
        container + ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'),  # protocol's default is a key
        container + ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}', "f:containerPort"),
        ("f:metadata", "f:finalizers", 'v:"x"'),
    }
    assert decode(encode(paths)) == paths
    assert encode(paths)["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["."] == {}


def test_a_custom_resource_list_is_keyed_as_the_server_recorded_it() -> None:
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "gw", "namespace": "x"},
               "spec": {"listeners": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}
    crd_schema = TypeInfo.from_openapi({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "listeners": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object"}}}}}})
    owned = encode(fieldset({"spec": gateway["spec"]}, crd_schema))
    live = {**copy.deepcopy(gateway), "metadata": {**gateway["metadata"], "managedFields": [
        {"manager": "envspec", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": owned}]}}
    live["spec"]["listeners"].reverse()  # a keyed list: order is not a change
    assert not needs_apply(gateway, live)
    fewer = copy.deepcopy(gateway)
    fewer["spec"]["listeners"].pop()
    assert needs_apply(fewer, live)


@pytest.mark.parametrize(("given", "stored"), [
    ("0.25", "250m"), ("250m", "250m"), ("1", "1"), ("1.5", "1500m"), ("1000", "1k"), ("1500", "1500"),
    ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("0.5Gi", "512Mi"), ("0.5Ki", "512"), ("1e3", "1e3"),
    ("1000k", "1M"), ("0.1", "100m"), ("0Mi", "0"), (1, "1"), (0.5, "500m"), ("5.0Gi", "5Gi"),
    ("0.0000000001", "1n"), ("12e6", "12e6"), ("2Gi", "2Gi"),
])
def test_quantities_canonicalise_as_apimachinery_does(given: object, stored: str) -> None:
    assert quantity.canonical(given) == stored  # type: ignore[arg-type]
    assert quantity.parse(given) == quantity.parse(stored)  # type: ignore[arg-type]


def test_malformed_quantities_are_refused() -> None:
    for bad in ("abc", "1Xi", "", "1.2.3"):
        with pytest.raises(quantity.QuantityError):
            quantity.parse(bad)
    assert quantity.same("250m", "0.25") and not quantity.same("250m", "0.3") and quantity.same("x", "x")


def test_diff_json_lists_the_probe_change(fake_kube: FakeKube, kubeconfig: Path, tmp_path: Path) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    out = tmp_path / "changes.json"
    assert pr_cmd("diff", kubeconfig, *NO_PROBE, "--json-out", str(out)).exit_code == 1
    changes = json.loads(out.read_text())
    assert changes["changed"] == [f"Deployment/{NS}/web"] and changes["created"] == [] and changes["pruned"] == []


_VALID = st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,4})?(m|k|M|G|Ki|Mi|Gi|Ti|e[0-9]|e-[0-9])?\Z")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_string_is_a_quantity_or_a_quantity_error(text: str) -> None:
    try:
        value = quantity.parse(text)
    except quantity.QuantityError:
        return
    assert quantity.parse(quantity.canonical(text)) == value


@settings(max_examples=200, deadline=None)
@given(_VALID)
def test_canonical_form_keeps_the_value_and_is_stable(text: str) -> None:
    once = quantity.canonical(text)
    assert quantity.parse(once) == quantity.parse(text)
    assert quantity.canonical(once) == once


def test_an_empty_list_the_server_omits_is_not_a_change() -> None:
    t = type_of("apps/v1", "Deployment").field("spec").field("template").field("spec").field("containers").item()
    assert same_values({"name": "web", "env": [], "args": []}, {"name": "web"}, t)
    assert not same_values({"name": "web", "env": [{"name": "A", "value": "1"}]}, {"name": "web"}, t)


def test_quantities_the_server_rewrites_do_not_show_as_changes(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    sets = ["--set", 'apps.web.containers.web.resources.limits.cpu="0.25"',
            "--set", 'apps.web.containers.web.resources.limits.memory="0.25Gi"']
    assert pr_cmd("apply", kubeconfig, *sets).exit_code == 0
    assert _web(fake_kube)["resources"]["limits"] == {"cpu": "250m", "memory": "256Mi"}  # canonical, as a server stores
    fake_kube.reset_requests()
    again = pr_cmd("apply", kubeconfig, *sets)
    assert again.exit_code == 0 and " 0 updated," in again.stdout, again.stdout
    assert writes(fake_kube) == []
    assert pr_cmd("diff", kubeconfig, *sets).exit_code == 0


@given(st.from_regex(quantity.SPEC_PATTERN, fullmatch=True))
@settings(max_examples=200, deadline=None)
def test_every_quantity_a_spec_may_write_is_one_the_comparison_parses(text: str) -> None:
    try:
        value = quantity.parse(text)
    except quantity.QuantityError as exc:  # only an exponent beyond what any quantity needs
        assert "exponent out of range" in str(exc)
    else:
        assert value >= 0


@pytest.mark.parametrize("text", ["1Pi", "500u", "1e3", "2.5Gi", "250m", ".5"])
def test_the_spec_accepts_the_quantities_the_api_accepts(text: str) -> None:
    import re

    assert re.fullmatch(quantity.SPEC_PATTERN, text)


@pytest.mark.parametrize("text", ["-1", "1 Gi", "1GB", "Gi", "1.2.3", "1Kib"])
def test_the_spec_refuses_what_is_no_non_negative_quantity(text: str) -> None:
    import re

    assert not re.fullmatch(quantity.SPEC_PATTERN, text)
