"""Problems for machines: JSON (validate and render) and GitHub Actions annotations."""

from __future__ import annotations

import json

from click.testing import CliRunner

from envspec.cli import main
from envspec.errors import Location, Problem
from envspec.report import github_annotation, problem_json


def test_annotation_format_and_escaping() -> None:
    p = Problem("must be >= 1 (got 0)\nsecond line 100%", Location("environments/a,b.yaml", 14, 7), "apps.api.replicas",
                rule="quota-fit")
    assert github_annotation(p) == (
        "::error file=environments/a%2Cb.yaml,line=14,col=7,title=quota-fit::"
        "apps.api.replicas: must be >= 1 (got 0)%0Asecond line 100%25"
    )
    warning = Problem("not pinned", Location("environments/_defaults.yaml", 40, 12), "apps.web.image", "warning",
                      "pinned-images", environments=("local", "preview-pr"))
    assert github_annotation(warning) == ("::warning file=environments/_defaults.yaml,line=40,col=12,title=pinned-images::"
                                          "apps.web.image: not pinned (in local, preview-pr)")
    flag = Problem("expected PATH=VALUE", Location("--set x"))
    assert github_annotation(flag) == "::error title=envspec::--set x: expected PATH=VALUE"


def test_problem_json_has_every_part() -> None:
    data = problem_json(Problem("bad", Location("f.yaml", 3, 4), "a.b", "warning", "rule-x"))
    assert {k: data[k] for k in ("file", "line", "column", "path", "rule", "severity", "message")} == {
        "file": "f.yaml", "line": 3, "column": 4, "path": "a.b", "rule": "rule-x", "severity": "warning", "message": "bad"}


def test_render_errors_as_json_and_annotations(repo_root) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["render", "preview-pr", "--pr", "0", "-o", "json"])
    assert result.exit_code == 2 and result.stdout == ""
    doc = json.loads(result.stderr)
    problem = doc["problems"][0]
    assert problem["file"] == "environments/preview-pr.yaml" and problem["line"] > 0 and problem["column"] > 0
    assert problem["path"] == "params.pr" and problem["severity"] == "error" and "must be >= 1" in problem["message"]

    gha = CliRunner().invoke(main, ["render", "preview-pr", "--pr", "0"], env={"GITHUB_ACTIONS": "true"})
    assert gha.exit_code == 2
    lines = gha.stderr.splitlines()
    assert any(line.startswith("environments/preview-pr.yaml:") for line in lines)  # the text stays
    assert any(line.startswith("::error file=environments/preview-pr.yaml,line=") and ",col=" in line and
               "::params.pr: --pr: must be >= 1 (got 0)" in line for line in lines)
    plain = CliRunner().invoke(main, ["render", "preview-pr", "--pr", "0"], env={"GITHUB_ACTIONS": ""})
    assert "::error" not in plain.stderr
