"""Rendering the bundled environments: snapshots, determinism, labels, committed output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from envspec.cli import main
from envspec.pipeline import compile_environment
from envspec.render.output import dump_yaml
from envspec.spec.project import Project

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"


def render_text(name: str, *params: str, root: Path | None = None) -> str:
    return dump_yaml(compile_environment(name, root=root, params=params).objects)


def test_preview_pr_snapshot(repo_root: Path, yaml_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert render_text("preview-pr", "pr=107") == yaml_snapshot


def test_preview_pr_pinned_snapshot(repo_root: Path, yaml_snapshot) -> None:  # type: ignore[no-untyped-def]
    web = "ghcr.io/aphiria/aphiria.com-web@sha256:" + "a" * 64
    api = "ghcr.io/aphiria/aphiria.com-api@sha256:" + "b" * 64
    compiled = compile_environment("preview-pr", params=["pr=107", f"webImage={web}", f"apiImage={api}"])
    assert compiled.warnings == []
    assert dump_yaml(compiled.objects) == yaml_snapshot


def test_example_snapshot(yaml_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert render_text("hello", root=EXAMPLE) == yaml_snapshot


@pytest.mark.parametrize("name", ["local", "preview-base", "production"])
def test_committed_rendered_output_is_current(repo_root: Path, name: str) -> None:
    """local, preview-base and production are snapshotted by rendered/ itself (not stored twice)."""
    result = CliRunner().invoke(main, ["render", "--all", "--out", "rendered", "--check"])
    assert result.exit_code == 0, result.output
    assert (repo_root / "rendered" / name / "kustomization.yaml").is_file()


def test_two_renders_are_byte_identical(repo_root: Path) -> None:
    for name, params in [("preview-pr", ("pr=107",)), ("production", ()), ("preview-base", ()), ("local", ())]:
        assert render_text(name, *params) == render_text(name, *params)


def test_render_does_not_depend_on_the_working_directory(repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render_text("preview-pr", "pr=107")
    monkeypatch.chdir(repo_root / "environments")
    assert render_text("preview-pr", "pr=107") == expected


def test_preview_pr_stays_in_its_namespace(repo_root: Path) -> None:
    # ...except the create-database Job, which runs next to the shared PostgreSQL's admin Secret.
    objects = compile_environment("preview-pr", params=["pr=107"]).objects
    elsewhere = []
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "preview-pr-107"
        elif obj["metadata"]["namespace"] != "preview-pr-107":
            elsewhere.append(f"{obj['kind']}/{obj['metadata']['namespace']}/{obj['metadata']['name']}")
    assert elsewhere == ["Job/default/envspec-create-aphiria-pr-107-0b7eadba"]


def test_preview_pr_contents(repo_root: Path) -> None:
    compiled = compile_environment("preview-pr", params=["pr=107"])
    by_id = {(o["kind"], o["metadata"]["name"]): o for o in compiled.objects}
    quota = by_id[("ResourceQuota", "quota")]["spec"]["hard"]
    assert (quota["limits.cpu"], quota["limits.memory"], quota["pods"]) == ("2", "4Gi", "5")
    config = by_id[("ConfigMap", "app-config")]["data"]
    assert config["APP_WEB_URL"] == "https://107.pr.aphiria.com"
    assert config["APP_API_URL"] == "https://107.pr-api.aphiria.com"
    assert config["DB_HOST"] == "db.default.svc.cluster.local"
    assert config["DB_NAME"] == "aphiria_pr_107"
    jobs = [o["metadata"]["name"] for o in compiled.objects if o["kind"] == "Job"]
    assert jobs == ["envspec-create-aphiria-pr-107-0b7eadba", "migrate"]  # creation before migration
    create_job = by_id[("Job", "envspec-create-aphiria-pr-107-0b7eadba")]
    assert create_job["metadata"]["namespace"] == "default"  # where the admin Secret lives, not the PR namespace
    create = create_job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in create["env"]}
    assert env["DB_NAME"]["value"] == "aphiria_pr_107"
    assert "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')" in create["command"][-1]  # idempotent
    # the role's password: apply's copy of app-db in the Job's namespace
    assert env["APP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "envspec-role-aphiria-pr-107-0b7eadba",
                                                               "key": "password"}
    copy = next(s for s in compiled.plan.secrets if s.copy_of)
    assert (copy.namespace, copy.name, copy.copy_of) == ("default", "envspec-role-aphiria-pr-107-0b7eadba",
                                                         ("preview-pr-107", "app-db"))
    # no PostgreSQL admin credentials in the PR namespace: no Secret built there, none referenced there
    assert all(s.name != "postgres-admin" for s in compiled.plan.secrets)
    for obj in compiled.objects:
        if obj["metadata"].get("namespace") == "preview-pr-107":
            assert "postgres-admin" not in json.dumps(obj), obj["metadata"]["name"]
    # the PR's code connects as its own role, never as the PostgreSQL admin
    php = next(c for c in by_id[("Deployment", "api")]["spec"]["template"]["spec"]["containers"] if c["name"] == "php")
    assert [e["name"] for e in php["env"]] == ["DB_PASSWORD", "METRICS_TOKEN"]
    assert php["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "app-db"
    assert config["DB_USER"] == "aphiria_pr_107"
    assert compiled.plan.database_drop is not None and compiled.plan.database_drop.role == "aphiria_pr_107"
    assert [s.generate for s in compiled.plan.secrets if s.name == "app-db"] == [("password",)]
    routes = {o["metadata"]["name"]: o["spec"] for o in compiled.objects if o["kind"] == "HTTPRoute"}
    assert routes["web"]["hostnames"] == ["107.pr.aphiria.com"]
    assert routes["web"]["parentRefs"][0]["sectionName"] == "https-pr"
    assert routes["api"]["hostnames"] == ["107.pr-api.aphiria.com"]
    assert routes["web-https-redirect"]["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"
    for kind in ("Deployment", "Job"):
        for obj in (o for o in compiled.objects if o["kind"] == kind):
            pod = obj["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                assert set(container["resources"]["requests"]) == {"cpu", "memory"}, container["name"]
                assert set(container["resources"]["limits"]) == {"cpu", "memory"}, container["name"]
    api = by_id[("Deployment", "api")]["spec"]["template"]["spec"]
    assert [c["name"] for c in api["initContainers"]] == ["copy-code"]
    assert {c["name"] for c in api["containers"]} == {"php", "nginx"}
    assert api["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    assert all(o["kind"] != "Secret" for o in compiled.objects)  # secrets are built by apply only


def test_preview_pr_warns_that_images_are_not_pinned(repo_root: Path) -> None:
    result = CliRunner().invoke(main, ["render", "preview-pr", "--pr", "107"])
    assert result.exit_code == 0
    assert "environments/_defaults.yaml:54:12: warning: apps.web.image: image 'ghcr.io/aphiria/aphiria.com-web:pr-107' is not pinned" in result.stderr


def test_every_object_carries_labels_and_pod_checksums(repo_root: Path) -> None:
    for name, params in [("preview-pr", ["pr=107"]), ("production", [])]:
        compiled = compile_environment(name, params=params)
        for obj in compiled.objects:
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "envspec"
            assert labels["envspec.dev/environment"] == name
        web = next(o for o in compiled.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
        assert len(web["spec"]["template"]["metadata"]["annotations"]["envspec.dev/config-checksum"]) == 64


def test_config_change_changes_the_pod_checksum(repo_root: Path) -> None:
    def checksum(*sets: str) -> str:
        objects = compile_environment("preview-pr", params=["pr=107"], sets=sets).objects
        web = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
        return web["spec"]["template"]["metadata"]["annotations"]["envspec.dev/config-checksum"]

    assert checksum() != checksum("configMaps.app-config.APP_ENV=changed")


def test_kind_order(repo_root: Path) -> None:
    assert compile_environment("preview-pr", params=["pr=1"]).objects[0]["kind"] == "Namespace"
    kinds = [o["kind"] for o in compile_environment("production").objects]
    first = {kind: kinds.index(kind) for kind in kinds}
    assert kinds[0] == "Namespace" and first["Namespace"] < first["ClusterIssuer"]  # monitoring, then cluster-wide
    assert first["ClusterIssuer"] < first["ConfigMap"] < first["Deployment"] < first["Service"] < first["HTTPRoute"] < first["Job"]


def test_out_dir_has_one_file_per_object_and_a_kustomization(tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", "preview-pr", "--pr", "107", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir() if p.name != ".envspec-output")  # the marker is not an object
    assert "kustomization.yaml" in files and "deployment_preview-pr-107_web.yaml" in files
    kustomization = YAML(typ="safe").load((out / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(f for f in files if f != "kustomization.yaml")
    assert kustomization["resources"][0] == "namespace_preview-pr-107.yaml"


def test_json_format(repo_root: Path) -> None:
    import json

    result = CliRunner().invoke(main, ["render", "preview-pr", "--pr", "107", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["kind"] == "List" and data["items"][0]["kind"] == "Namespace"


def test_render_all_check_fails_after_an_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(repo_root / "environments", project / "environments")
    shutil.copytree(repo_root / "templates", project / "templates")  # the project's own templates (preview-base's)
    shutil.copytree(repo_root / "components", project / "components")  # the project's own components
    shutil.copytree(repo_root / "rendered", project / "rendered")
    monkeypatch.chdir(project)
    runner = CliRunner()
    assert runner.invoke(main, ["render", "--all", "--out", "rendered", "--check"]).exit_code == 0
    spec = project / "environments" / "production.yaml"
    spec.write_text(spec.read_text().replace("replicas: 2\n    disruptionBudget", "replicas: 3\n    disruptionBudget", 1))
    result = runner.invoke(main, ["render", "--all", "--out", "rendered", "--check"])
    assert result.exit_code == 1
    assert "-  replicas: 2" in result.stdout and "+  replicas: 3" in result.stdout
    assert "rendered is stale" in result.stderr
    # writing it brings --check back to green
    assert runner.invoke(main, ["render", "--all", "--out", "rendered"]).exit_code == 0
    assert runner.invoke(main, ["render", "--all", "--out", "rendered", "--check"]).exit_code == 0


def test_project_templates_override_and_extend(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project)
    (project / "templates" / "namespace.yaml.j2").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ item.name }}\n  annotations:\n    owner: platform\n"
    )
    objects = compile_environment("hello", root=project).objects
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["annotations"] == {"owner": "platform"}
    assert any(o["metadata"]["name"] == "banner" for o in objects)  # the project's extra template


def test_environment_names_skip_partials() -> None:
    assert Project(EXAMPLE).environment_names() == ["hello"]
