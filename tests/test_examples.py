"""The example projects under examples/: each renders (snapshot), validates against the Kubernetes schemas
and, where ../shared is present, the shared CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from envspec.pipeline import compile_environment
from envspec.render.output import dump_yaml
from envspec.validate import validate_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CASES = [("django", "django"), ("platform", "platform")]


@pytest.mark.parametrize(("folder", "env"), CASES, ids=[c[0] for c in CASES])
def test_example_renders_as_its_snapshot(folder: str, env: str, yaml_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert dump_yaml(compile_environment(env, root=EXAMPLES / folder).objects) == yaml_snapshot


@pytest.mark.parametrize("folder", ["hello", "django", "platform"])
def test_example_validates_against_the_kubernetes_schemas(folder: str) -> None:
    report = validate_report([], root=EXAMPLES / folder)
    problems, targets = report.problems, report.checked
    assert targets and problems == []


@pytest.mark.parametrize("folder", ["hello", "django", "platform"])
def test_example_validates_against_the_shared_crds(folder: str, crd_dirs: list[Path]) -> None:
    problems = validate_report([], root=EXAMPLES / folder, crd_dirs=crd_dirs).problems
    assert problems == []


def test_django_example_has_the_pieces_a_web_service_needs() -> None:
    objects = compile_environment("django", root=EXAMPLES / "django").objects
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "web"), ("Deployment", "worker"), ("StatefulSet", "redis"), ("CronJob", "beat"),
            ("Job", "migrate"), ("HorizontalPodAutoscaler", "web"), ("ServiceAccount", "shop"), ("HTTPRoute", "web")} <= kinds
    web = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
    assert "replicas" not in web["spec"]  # the autoscaler owns the replica count
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert {"readinessProbe", "livenessProbe", "startupProbe", "securityContext"} <= set(container)
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    redis = next(o for o in objects if o["kind"] == "StatefulSet")
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_the_platform_examples_schema_is_current_and_types_its_components() -> None:
    from click.testing import CliRunner

    from envspec.cli import main

    result = CliRunner().invoke(main, ["schema", "--root", str(EXAMPLES / "platform"), "--check"])
    assert result.exit_code == 0, result.output
    text = (EXAMPLES / "platform" / "schemas" / "environment.schema.json").read_text()
    assert '"component.metrics"' in text and '"component.rate-limit"' in text
