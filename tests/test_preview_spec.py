"""Preview lifecycle in the spec: gc recognises previews by `preview:`, not by an environment's name."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from envspec.errors import SpecError
from envspec.github.gc import PreviewInstance, decide
from envspec.pipeline import compile_environment
from envspec.spec.preview import preview_environments
from envspec.spec.project import Project

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def project(tmp_path: Path, files: dict[str, str]) -> Project:
    (tmp_path / "environments").mkdir()
    for name, text in files.items():
        (tmp_path / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return Project(tmp_path)


REVIEW = """params:
  number: {type: integer, minimum: 1}
instance: review-${params.number}-app
preview: {prParam: number, ttl: 3d}
cluster: {context: kind-test}
namespace: {name: "review-${params.number}"}
"""
STAGING = "cluster: {context: kind-test}\nnamespace: {name: staging}\n"


def test_any_environment_name_can_be_a_preview(tmp_path: Path) -> None:
    found = preview_environments(project(tmp_path, {"review": REVIEW, "staging": STAGING}))
    assert list(found) == ["review"]
    spec = found["review"]
    assert spec.pr_param == "number" and spec.ttl == "3d"
    assert spec.pr_of("review-42-app") == 42
    assert spec.pr_of("review-42") is None and spec.pr_of("review-x-app") is None


def test_gc_decides_by_the_spec_and_its_ttl(tmp_path: Path) -> None:
    previews = preview_environments(project(tmp_path, {"review": REVIEW, "staging": STAGING}))
    instances = [
        PreviewInstance("review-1-app", "review", NOW - timedelta(days=4)),
        PreviewInstance("review-2-app", "review", NOW - timedelta(days=1)),
        PreviewInstance("staging", "staging", NOW - timedelta(days=400)),
    ]
    verdicts = decide(instances, previews=previews, is_closed=None, older_than=None, now=NOW)
    assert [(v.instance.instance, v.expired) for v in verdicts] == [("review-1-app", True), ("review-2-app", False)]
    assert verdicts[0].reasons == ("older than 3d (age 4d0h, never stamped by an apply)",)


def test_a_preview_instance_must_carry_the_pr_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = REVIEW.replace("instance: review-${params.number}-app", "instance: review")
    with pytest.raises(SpecError) as info:
        preview_environments(project(tmp_path, {"review": bad}))
    assert [str(p) for p in info.value.problems] == [
        "environments/review.yaml:3:11: instance: a preview's instance name must contain ${params.number}, "
        "so gc can tell which PR an instance belongs to (instance is 'review')"
    ]


def test_the_pr_parameter_must_be_a_declared_integer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, {"review": REVIEW.replace("prParam: number", "prParam: pr")})
    with pytest.raises(SpecError) as info:
        compile_environment("review", root=tmp_path, params=["number=3"])
    assert [str(p) for p in info.value.problems] == [
        "environments/review.yaml:4:20: preview.prParam: 'pr' must name an integer parameter under params:"
    ]


def test_the_bundled_preview_is_declared_in_its_spec(repo_root: Path) -> None:
    found = preview_environments(Project(repo_root))
    assert list(found) == ["preview-pr"]
    assert found["preview-pr"].pr_of("preview-pr-107") == 107
