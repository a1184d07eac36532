"""diff against the live (fake) cluster and against committed rendered output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube
from envspec.kube.diff import ChangeSet, diff_against, diff_live
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import CANARY, ENV, NS, fake_kube, fast_wait, kube, kubeconfig, objects, plan  # noqa: F401


def _apply(kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))


def test_diff_of_a_new_instance_lists_creations_and_masks_secrets(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    changes = diff_live(kube, plan(), environ=ENV)

    assert len(changes.created) == len(objects()) + 1 and not changes.changed and not changes.pruned
    assert f"Secret/{NS}/db-credentials" in changes.created
    assert "password: '<masked: changed>'" in changes.diff
    assert CANARY not in changes.diff and base64.b64encode(CANARY.encode()).decode() not in changes.diff
    assert not [r for r in fake_kube.requests if r.method != "GET"]  # diff never writes


def test_no_changes_after_apply(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    _apply(kube)
    fake_kube.reset_requests()
    changes = diff_live(kube, plan(), environ=ENV)
    assert not changes.has_changes and changes.diff == ""
    assert [r for r in fake_kube.requests if r.method != "GET"] == []


def test_changes_show_only_managed_fields_and_use_server_dry_run(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    _apply(kube)
    fake_kube.reset_requests()
    objs = objects()
    objs[3]["spec"]["replicas"] = 3  # Deployment web
    objs = [o for o in objs if not (o["kind"] == "Service" and o["metadata"]["name"] == "api")]

    changes = diff_live(kube, plan(objs), environ={"ENVSPEC_TEST_DB_PASSWORD": "another-password"})

    assert changes.changed == [f"Secret/{NS}/db-credentials", f"Deployment/{NS}/web"]
    assert changes.pruned == [f"Service/{NS}/api"]
    assert "-  replicas: 1\n+  replicas: 3\n" in changes.diff
    assert "-  password: <masked>\n+  password: '<masked: changed>'\n" in changes.diff
    for noise in ("status:", "managedFields", "resourceVersion", "uid:", "creationTimestamp", "generation"):
        assert noise not in changes.diff
    dry_runs = [r for r in fake_kube.requests if r.method == "PATCH"]
    assert dry_runs and all(r.query.get("dryRun") == ["All"] for r in dry_runs)
    assert fake_kube.get("apps/v1", "Deployment", "web", NS)["spec"]["replicas"] == 1


def test_changeset_json_round_trip() -> None:
    original = ChangeSet(created=["Namespace/x"], changed=["Deployment/x/web"], pruned=["Service/x/api"], diff="--- a\n")
    again = ChangeSet.from_json(original.to_json())
    assert again == original and again.has_changes
    assert json.loads(original.to_json())["pruned"] == ["Service/x/api"]
    assert not ChangeSet().has_changes


def test_diff_against_committed_output(tmp_path: Path) -> None:
    committed = objects()
    committed[2]["data"]["apiUri"] = "old"
    committed.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": NS}})
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all(committed[:5]))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(yaml.safe_dump_all(committed[5:]))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": NS},
              "data": {"k": base64.b64encode(b"committed-value").decode()}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(secret))
    desired = [*objects(), {**secret, "data": {"k": base64.b64encode(b"new-value").decode()}}]

    changes = diff_against(plan(desired), tmp_path)

    assert changes.changed == [f"ConfigMap/{NS}/js-config", f"Secret/{NS}/s"]
    assert changes.pruned == [f"ConfigMap/{NS}/gone"] and changes.created == []
    assert "-  apiUri: old\n+  apiUri: https://107.pr-api\n" in changes.diff
    assert "Y29tbWl0dGVkLXZhbHVl" not in changes.diff and "bmV3LXZhbHVl" not in changes.diff
    assert not diff_against(plan(objects()), _write_all(tmp_path / "same", objects())).has_changes


def _write_all(directory: Path, objs: list[dict]) -> Path:
    directory.mkdir()
    (directory / "all.yaml").write_text(yaml.safe_dump_all(objs))
    return directory


def test_diff_needs_no_secret_variables_and_compares_those_secrets_by_keys(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    lines: list[str] = []
    before = diff_live(kube, plan(), environ={}, report=lines.append)  # the plan job: no secrets at all
    assert f"Secret/{NS}/db-credentials" in before.created
    assert before.notes == [f"Secret {NS}/db-credentials: data not compared (ENVSPEC_TEST_DB_PASSWORD not set); "
                            "compared by keys only"]
    assert lines == [f"note: {before.notes[0]}"]

    _apply(kube)
    fake_kube.reset_requests()
    after = diff_live(kube, plan(), environ={})
    assert not after.has_changes and after.diff == ""  # keys present: unchanged, whatever the value
    assert [r for r in fake_kube.requests if r.method != "GET"] == []
    assert ChangeSet.from_json(after.to_json()).notes == after.notes

    # A key the live Secret lacks still shows up, masked.
    fake_kube.put({**fake_kube.get("v1", "Secret", "db-credentials", NS), "data": {}})
    missing = diff_live(kube, plan(), environ={})
    assert missing.changed == [f"Secret/{NS}/db-credentials"] and "password: '<masked: changed>'" in missing.diff


def test_dry_run_diff_reports_conflicts_instead_of_forcing(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    from kubernetes.dynamic import DynamicClient

    _apply(kube)
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
             "spec": {"replicas": 5}}
    DynamicClient(kube.api_client).server_side_apply(
        kube.resource("apps/v1", "Deployment"), body=other, field_manager="kubectl", force_conflicts=True
    )
    fake_kube.reset_requests()
    objs = objects()
    objs[3]["spec"]["replicas"] = 2

    changes = diff_live(kube, plan(objs), environ=ENV)

    assert changes.conflicts == [f"Deployment/{NS}/web"] and changes.changed == [f"Deployment/{NS}/web"]
    assert f"# conflict: Deployment/{NS}/web: apply conflict: .spec.replicas" in changes.diff
    assert "--force-conflicts" in changes.diff and changes.summary().endswith("1 in conflict")
    dry_runs = [r for r in fake_kube.requests if r.method == "PATCH"]
    assert dry_runs and all("force" not in r.query and r.query.get("dryRun") == ["All"] for r in dry_runs)
