"""Schema validation of every rendered object: built-in kinds always, custom resources against the shared CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.cli import main
from envspec.pipeline import compile_environment
from envspec.validate import check_schemas, load_crds

ENVIRONMENTS = [("local", []), ("preview-base", []), ("preview-pr", ["pr=107"]), ("production", [])]
BUILTIN_GROUPS = ("v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
                  "admissionregistration.k8s.io/v1")


@pytest.mark.parametrize("name,params", ENVIRONMENTS, ids=[n for n, _ in ENVIRONMENTS])
def test_builtin_kinds_pass_kubernetes_schemas(repo_root: Path, name: str, params: list[str]) -> None:
    compiled = compile_environment(name, params=params)
    builtin = [o for o in compiled.objects if o["apiVersion"] in BUILTIN_GROUPS]
    assert builtin, "every environment renders built-in kinds"
    assert check_schemas(compiled, "1.34", {}) == []


@pytest.mark.parametrize("name,params", ENVIRONMENTS, ids=[n for n, _ in ENVIRONMENTS])
def test_custom_resources_pass_their_crds(repo_root: Path, crd_dirs: list[Path], name: str, params: list[str]) -> None:
    crds = load_crds(crd_dirs)
    compiled = compile_environment(name, params=params)
    custom = [o for o in compiled.objects if (o["apiVersion"], o["kind"]) in crds]
    assert custom, f"{name} renders Gateway API or cert-manager resources"
    assert {o["kind"] for o in compiled.objects if "." in o["apiVersion"].split("/")[0] and o["apiVersion"] not in BUILTIN_GROUPS} <= {
        kind for _, kind in crds
    }
    assert check_schemas(compiled, "1.34", crds) == []


def test_a_schema_violation_is_reported_with_its_object_and_spec_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "environments" / "env.yaml").write_text(
        "cluster: {context: x}\nnamespace: {name: demo}\ntemplates: [bad.yaml.j2]\n"
    )
    (tmp_path / "templates" / "bad.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: demo\ndata:\n  count: 3\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "env"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "environments/env.yaml:3:13: ConfigMap demo/bad: .data.count: 3 is not of type 'string', 'null' (Kubernetes 1.34) [schema]"
    ]


def test_a_crd_violation_is_reported(tmp_path: Path, crd_dirs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "environments" / "env.yaml").write_text(
        "cluster: {context: x}\nnamespace: {name: demo}\ntemplates: [route.yaml.j2]\n"
    )
    (tmp_path / "templates" / "route.yaml.j2").write_text(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n  namespace: demo\n"
        "spec:\n  hostnames: [42]\n"
    )
    monkeypatch.chdir(tmp_path)
    args = ["validate", "env", *[arg for d in crd_dirs for arg in ("--crds", str(d))]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "HTTPRoute demo/r: .spec.hostnames[0]: 42 is not of type 'string' (CRD gateway.networking.k8s.io/v1) [schema]" in result.stderr


def test_validate_all_environments_through_the_cli(repo_root: Path, crd_dirs: list[Path]) -> None:
    args = ["validate", *[arg for d in crd_dirs for arg in ("--crds", str(d))]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    assert "ok: local, preview-base, preview-pr, production" in result.stderr
    # preview-pr is validated with its example PR number; its images are unpinned there, which only warns
    assert "warning: apps.web.image" in result.stderr


def test_strict_turns_warnings_into_errors(repo_root: Path) -> None:
    result = CliRunner().invoke(main, ["validate", "preview-pr", "--pr", "107", "--strict"])
    assert result.exit_code == 2
    assert "not pinned by digest" in result.stderr
