"""validate for CI and editors: --format json, GitHub annotations, --strict once with a summary."""

from __future__ import annotations

import json

from click.testing import CliRunner

from envspec.cli import main

UNPINNED = "apps.web.image: image 'ghcr.io/aphiria/aphiria.com-web:pr-107' is not pinned by digest"


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["validate", *args], env={"GITHUB_ACTIONS": "", **(env or {})})


def test_json_report(repo_root) -> None:  # type: ignore[no-untyped-def]
    result = run("--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["environments"] == ["local", "preview-base", "preview-pr", "production"]
    assert doc["errors"] == 0 and doc["warnings"] == 2
    warning = next(p for p in doc["problems"] if p["path"] == "apps.web.image")
    assert warning["file"] == "environments/_defaults.yaml" and warning["line"] > 0 and warning["column"] > 0
    assert warning["rule"] == "pinned-images" and warning["severity"] == "warning"
    assert warning["environments"] == ["preview-pr"]

    bad = run("preview-pr", "--set", "apps.web.replicas=0", "-o", "json")
    assert bad.exit_code == 2
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["errors"] == 1
    error = doc["problems"][0]
    assert error == {**error, "path": "apps.web.replicas", "severity": "error", "file": "--set apps.web.replicas=0"}

    strict = run("-o", "json", "--strict")
    assert strict.exit_code == 2 and json.loads(strict.stdout)["ok"] is False


def test_strict_prints_each_warning_once_with_its_environment_and_a_summary(repo_root) -> None:  # type: ignore[no-untyped-def]
    result = run("--strict")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    matching = [line for line in lines if UNPINNED in line]
    assert len(matching) == 1
    assert matching[0].startswith("environments/_defaults.yaml:") and matching[0].endswith("(in preview-pr)")
    assert lines[-1] == "validate: 0 errors, 2 warnings (preview-pr: 2 warnings); --strict: warnings are errors"
    relaxed = run()
    assert relaxed.exit_code == 0
    assert sum(UNPINNED in line for line in relaxed.stderr.splitlines()) == 1
    assert "validate: 0 errors, 2 warnings (preview-pr: 2 warnings)" in relaxed.stderr


def test_github_actions_annotations(repo_root) -> None:  # type: ignore[no-untyped-def]
    result = run("--strict", env={"GITHUB_ACTIONS": "true"})
    lines = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert len(lines) == 2
    assert lines[0].startswith("::warning file=environments/_defaults.yaml,line=")
    assert ",col=" in lines[0] and ",title=pinned-images::" in lines[0] and lines[0].endswith("(in preview-pr)")
    error = run("preview-pr", "--set", "apps.web.replicas=0", "-o", "json", env={"GITHUB_ACTIONS": "true"})
    assert "::error title=envspec::--set apps.web.replicas=0: apps.web.replicas: must be >= 1 (got 0)" in error.stderr
    json.loads(error.stdout)  # annotations never go to the JSON on stdout
