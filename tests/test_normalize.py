"""normalize: the environment's namespace is the default for every object that names none."""

from __future__ import annotations

from envspec.render.normalize import normalize
from envspec.render.templates import RenderedObject


def _job(namespace: str) -> dict:
    pod = {"containers": [{"name": "c", "image": "busybox@sha256:" + "0" * 64}], "restartPolicy": "Never"}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": namespace},
            "spec": {"template": {"spec": pod}}}


def test_an_object_without_a_namespace_gets_the_environments_even_after_a_workload_in_another() -> None:
    rendered = [
        RenderedObject(_job("other"), "job.yaml.j2", ("jobs", "j")),
        RenderedObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {}},
                       "raw", ("objects", 0)),
    ]
    objects, _ = normalize(rendered, {"app.kubernetes.io/instance": "x"}, {}, namespace="platform")
    by_kind = {o["kind"]: o for o in objects}
    assert by_kind["Job"]["metadata"]["namespace"] == "other"
    assert by_kind["ConfigMap"]["metadata"]["namespace"] == "platform"



def test_normalize_never_changes_the_objects_it_is_given() -> None:
    import copy

    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "c", "image": "x", "envFrom": [{"configMapRef": {"name": "cm"}}]}]}}}}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}}
    given = [_job("other"), cron, config]
    before = copy.deepcopy(given)
    rendered = [RenderedObject(obj, "t.yaml.j2", ("objects", i)) for i, obj in enumerate(given)]
    first, _ = normalize(rendered, {"app.kubernetes.io/instance": "x"}, {}, namespace="platform")
    assert given == before  # a template's kept output or a spec's raw object may be rendered again
    again, _ = normalize(rendered, {"app.kubernetes.io/instance": "x"}, {}, namespace="platform")
    assert again == first
    template = next(o for o in first if o["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"] == {"app.kubernetes.io/instance": "x"}
    assert "envspec.dev/config-checksum" in template["metadata"]["annotations"]
