"""config, config diff, list and init."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.cli import main
from tests.test_authoring_schema import _check_jsonschema


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_config_is_the_merged_resolved_spec_without_secret_values(repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "canary-s3cret-value")
    monkeypatch.setenv("GHCR_TOKEN", "canary-ghcr-token")
    result = run("config", "preview-pr", "--pr", "107", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["instance"] == "preview-pr-107"
    assert data["params"] == {"pr": 107, "webImage": "ghcr.io/aphiria/aphiria.com-web:pr-107",
                              "apiImage": "ghcr.io/aphiria/aphiria.com-api:pr-107", "appEnv": "preview"}
    assert data["apps"]["web"]["containers"]["web"]["port"] == 80  # from _defaults.yaml
    assert "postgres-admin" not in data["secrets"]  # deleted by preview-pr's null
    assert data["secrets"]["ghcr-pull"]["passwordEnv"] == "GHCR_TOKEN"  # the source, never the value
    assert "extends" not in data
    yaml_out = run("config", "preview-pr", "--pr", "107").stdout
    assert "canary" not in result.stdout + yaml_out
    assert "instance: preview-pr-107" in yaml_out
    assert run("config", "production", "--set", "apps.web.replicas=5", "-o", "json").stdout.count('"replicas": 5') == 1


def test_config_diff_compares_two_environments(repo_root: Path) -> None:
    result = run("config", "diff", "preview-base", "production")
    assert result.exit_code == 1
    assert result.stdout.startswith("--- preview-base\n+++ production\n")
    assert "+requirePinnedImages: true" in result.stdout
    same = run("config", "diff", "production", "production")
    assert same.exit_code == 0 and same.stdout == ""
    assert run("config", "diff", "production").exit_code == 2
    unknown = run("config", "nope")
    assert unknown.exit_code == 2 and "unknown environment 'nope'" in unknown.stderr


def test_list_shows_parameters_binding_and_renderability(repo_root: Path) -> None:
    result = run("list")
    assert result.exit_code == 0, result.stderr
    assert "preview-pr: needs parameters; cluster: context do-nyc3-aphiria-com-preview-cluster, DigitalOcean endpoint" in result.stdout
    assert "  --param pr: integer (required), e.g. 107" in result.stdout
    assert "production: renders without parameters" in result.stdout and "confirm" in result.stdout
    data = {e["name"]: e for e in json.loads(run("list", "--format", "json").stdout)}
    assert set(data) == {"local", "preview-base", "preview-pr", "production"}
    assert data["preview-pr"]["rendersWithoutParameters"] is False
    assert data["local"]["rendersWithoutParameters"] is True
    assert data["preview-pr"]["params"][0] == {"name": "pr", "type": "integer", "example": 107,
                                               "description": "Pull request number", "required": True}


def test_init_scaffolds_a_project_that_validates_and_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "shop"
    result = run("init", str(folder))
    assert result.exit_code == 0, result.stderr
    for rel in ("environments/_defaults.yaml", "environments/dev.yaml", "schemas/environment.schema.json",
                ".gitignore", ".github/workflows/envspec.yml"):
        assert (folder / rel).is_file(), rel
    assert (folder / "environments/dev.yaml").read_text().startswith("# yaml-language-server: $schema=../schemas/environment.schema.json\n")
    assert "kubeconfig" in (folder / ".gitignore").read_text()
    assert "envspec render --all --check" in (folder / ".github/workflows/envspec.yml").read_text()
    monkeypatch.chdir(folder)
    assert run("validate").exit_code == 0
    rendered = run("render", "dev")
    assert rendered.exit_code == 0 and "name: shop-dev" in rendered.stdout
    assert run("schema", "--check").exit_code == 0
    assert _check_jsonschema(*(folder / "environments").glob("*.yaml")).returncode == 0


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("mine\n")
    result = run("init", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}/.gitignore: exists; envspec init never overwrites a file" in result.stderr
    assert (tmp_path / ".gitignore").read_text() == "mine\n"
    assert not (tmp_path / "environments").exists()
    bad = run("init", str(tmp_path / "x"), "--env", "Bad_Name")
    assert bad.exit_code == 2 and "--env: environment name must be a DNS label" in bad.stderr
