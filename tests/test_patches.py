"""Escape hatches: `patches:` (strategic merge by the upstream merge keys, JSON Patch) and raw objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from envspec.errors import SpecError
from envspec.pipeline import compile_environment
from envspec.apidefs import type_of
from envspec.render.patches import strategic_merge

BASE = """cluster: {context: kind-test}
namespace: {name: demo}
apps:
  web:
    image: nginx:1.27
    containers:
      web:
        port: 80
        env: {A: "1"}
      sidecar:
        image: busybox:1.36
    service: {port: 80}
"""


def project(tmp_path: Path, extra: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.yaml").write_text(BASE + extra, encoding="utf-8")
    for rel, text in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return tmp_path


def deployment(objects: list[dict]) -> dict:
    return next(o for o in objects if o["kind"] == "Deployment")


def test_merge_keys_come_from_the_upstream_definitions() -> None:
    pod = type_of("apps/v1", "Deployment").field("spec").field("template").field("spec")
    assert pod.field("containers").patch_strategy == ("merge",) and pod.field("containers").patch_merge_key == "name"
    assert pod.field("containers").item().field("ports").patch_merge_key == "containerPort"
    assert "merge" not in pod.field("tolerations").patch_strategy
    assert not type_of("example.com/v1", "Widget").known


def test_patching_reads_the_definitions_without_importing_kubernetes_validate(tmp_path: Path) -> None:
    """Importing kubernetes_validate costs ~50 ms; the patches need only its files."""
    import subprocess
    import sys

    root = project(tmp_path, """patches:
  - target: {kind: Deployment}
    strategicMerge: {spec: {template: {spec: {containers: [{name: web, image: "nginx:1.28"}]}}}}
""")
    code = ("import sys; from pathlib import Path; from envspec.pipeline import compile_environment; "
            f"c = compile_environment('demo', root=Path({str(root)!r})); "
            "d = next(o for o in c.objects if o['kind'] == 'Deployment'); "
            "print(d['spec']['template']['spec']['containers'][0]['image'], "
            "len(d['spec']['template']['spec']['containers']), 'kubernetes_validate' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["nginx:1.28", "2", "False"]


def test_strategic_merge_merges_containers_by_name_and_keeps_the_rest() -> None:
    live = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
                                                             {"name": "b", "image": "y"}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]},
                                                              {"name": "b", "$patch": "delete"},
                                                              {"name": "c", "image": "z"}]}}}}
    out = strategic_merge(live, patch, type_of("apps/v1", "Deployment"))
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "c"]
    assert containers[0]["image"] == "x"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_patches_apply_before_labels_and_rules(tmp_path: Path) -> None:
    root = project(tmp_path, """patches:
  - target: {kind: Deployment, name: web}
    strategicMerge:
      spec:
        template:
          spec:
            tolerations: [{key: dedicated, operator: Exists}]
            containers:
              - {name: web, env: [{name: B, value: "2"}]}
  - target: {labels: {envspec.dev/environment: demo}, kind: Service}
    jsonPatch:
      - {op: add, path: /metadata/annotations, value: {note: patched}}
  - target: {kind: Deployment}
    jsonPatch:
      - {op: replace, path: /spec/replicas, value: 3}
      - {op: remove, path: /spec/template/spec/containers/1}
""")
    objects = compile_environment("demo", root=root).objects
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert [c["name"] for c in pod["containers"]] == ["web"]
    assert pod["containers"][0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert deployment(objects)["spec"]["replicas"] == 3
    assert deployment(objects)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "envspec"
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["metadata"]["annotations"] == {"note": "patched"}


def problems_of(root: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        compile_environment("demo", root=root)
    return [str(p) for p in info.value.problems]


def test_a_patch_that_matches_nothing_is_an_error_at_its_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, """patches:
  - target: {kind: Deployment, name: wbe}
    strategicMerge: {spec: {replicas: 2}}
""")
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "environments/demo.yaml:14:5: patches[0].target: this patch's target matches no rendered object"
    ]


def test_a_bad_json_patch_is_located_at_its_operation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, """patches:
  - target: {kind: Deployment}
    jsonPatch:
      - {op: add, path: /spec/template/nope/x, value: 1}
""")
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "environments/demo.yaml:16:25: patches[0].jsonPatch[0].path: Deployment/web: path /spec/template/nope does not exist"
    ]


def test_a_merge_list_item_without_its_key_is_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, """patches:
  - target: {kind: Deployment}
    strategicMerge:
      spec: {template: {spec: {containers: [{image: "busybox:1.37"}]}}}
""")
    monkeypatch.chdir(root)
    (problem,) = problems_of(root)
    assert problem.startswith("environments/demo.yaml:16:45:")
    assert "patches[0].strategicMerge.spec.template.spec.containers[0]: Deployment/web: each item of this list needs its merge key 'name'" in problem


def test_a_patch_needs_exactly_one_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, """patches:
  - target: {kind: Deployment}
""")
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "environments/demo.yaml:14:5: patches[0]: a patch has exactly one of strategicMerge or jsonPatch"
    ]


def test_raw_objects_inline_and_from_files_get_labels_order_and_rules(tmp_path: Path) -> None:
    root = project(tmp_path, """objects:
  - apiVersion: v1
    kind: ServiceAccount
    metadata: {name: robot, namespace: demo}
objectFiles: [manifests/extra.yaml]
""", {"manifests/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\ndata: {a: b}\n---\n"
      "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n"})
    compiled = compile_environment("demo", root=root)
    kinds = [o["kind"] for o in compiled.objects]
    assert kinds.index("PriorityClass") < kinds.index("ConfigMap") < kinds.index("Deployment")
    for obj in compiled.objects:
        assert obj["metadata"]["labels"]["envspec.dev/environment"] == "demo"
    index = kinds.index("PriorityClass")
    assert str(compiled.locate(index)).endswith("manifests/extra.yaml:6:1")
    assert compiled.origins[kinds.index("ServiceAccount")] == ("objects", 0)


def test_raw_object_file_problems_are_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, """objectFiles: [manifests/missing.yaml, manifests/bad.yaml, ../outside.yaml]
""", {"manifests/bad.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {}\n"})
    monkeypatch.chdir(root)
    assert problems_of(root) == [
        "environments/demo.yaml:13:15: objectFiles[0]: object file 'manifests/missing.yaml' does not exist",
        "manifests/bad.yaml:1:1: this is an object without metadata.name",
        "environments/demo.yaml:13:59: objectFiles[2]: object file '../outside.yaml' is outside the project",
    ]


def test_a_raw_object_takes_part_in_duplicate_detection(tmp_path: Path) -> None:
    root = project(tmp_path, """objects:
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: demo}, spec: {}}
""")
    with pytest.raises(SpecError, match="two objects render as Deployment/demo/web"):
        compile_environment("demo", root=root)


def test_validate_locates_a_raw_objects_schema_error_in_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envspec.validate import validate_report

    root = project(tmp_path, "objectFiles: [manifests/bad.yaml]\n", {
        "manifests/bad.yaml": "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: demo}\ndata: {}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: demo}\nspec: {ports: [{port: not-a-number}]}\n"})
    monkeypatch.chdir(root)
    problems = validate_report(["demo"], root=root).problems
    located = [str(p) for p in problems]
    assert len(located) == 1 and located[0].startswith("manifests/bad.yaml:7:1: Service demo/b: .spec.ports[0].port:"), located


def test_validate_checks_a_patched_object_against_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envspec.validate import validate_report

    root = project(tmp_path, """patches:
  - target: {kind: Deployment}
    strategicMerge: {spec: {replicas: many}}
""")
    monkeypatch.chdir(root)
    problems = validate_report(["demo"], root=root).problems
    assert any("Deployment demo/web: .spec.replicas" in str(p) for p in problems), [str(p) for p in problems]


def test_a_raw_namespaced_object_without_a_namespace_lands_in_the_environments(tmp_path: Path) -> None:
    root = project(tmp_path, """objects:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: loose}, data: {a: b}}
  - {apiVersion: scheduling.k8s.io/v1, kind: PriorityClass, metadata: {name: high}, value: 10}
""")
    objects = {o["metadata"]["name"]: o for o in compile_environment("demo", root=root).objects}
    assert objects["loose"]["metadata"]["namespace"] == "demo"
    assert "namespace" not in objects["high"]["metadata"]
