"""The GitHub workflows: valid against GitHub's schema, and holding the rules of the PR flow.

GitHub is not reachable here, so the lint is offline: check-jsonschema's
bundled copy of the workflow schema. The structural tests encode the failures
the seed project had (racing cleanup and deploy, old commits deploying after
new ones, fork PRs near secrets, steps duplicated between preview and
production) as assertions over the parsed YAML.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
PR_TRIGGERED = ("preview.yml", "cleanup.yml")
EXPECTED = {"ci.yml", "deploy.yml", "preview.yml", "cleanup.yml", "production.yml", "e2e.yml", "build-images.yml",
            "image.yml"}


def load(name: str) -> dict[str, Any]:
    data = YAML(typ="safe").load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def step_running(job: dict[str, Any], command: str) -> int:
    """Index of the first step whose script runs `command` (e.g. 'envspec apply')."""
    for index, step in enumerate(steps(job)):
        if re.search(rf"(^|\s){re.escape(command)}\s", str(step.get("run", ""))):
            return index
    raise AssertionError(f"no step runs {command!r}")


def test_all_expected_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} == EXPECTED


def test_workflows_pass_githubs_schema() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "check_jsonschema"]
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run(
        [*cmd, "--builtin-schema", "vendor.github-workflows", *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_lint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint above can fail: a job without runs-on or uses is rejected."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: echo hi\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("check-jsonschema")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "check_jsonschema"]
    result = subprocess.run([*cmd, "--builtin-schema", "vendor.github-workflows", str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_triggers() -> None:
    assert set(load("ci.yml")["on"]) == {"push", "pull_request"}
    assert load("preview.yml")["on"] == {"pull_request": {"types": ["opened", "synchronize", "reopened"]}}
    assert load("cleanup.yml")["on"] == {"pull_request": {"types": ["closed"]}}
    assert set(load("production.yml")["on"]) == {"push", "workflow_dispatch"}
    assert set(load("e2e.yml")["on"]) == {"push", "workflow_dispatch"}
    call = load("deploy.yml")["on"]["workflow_call"]
    assert {"environment", "github-environment", "pr", "head-sha", "web-image", "api-image"} <= set(call["inputs"])


def test_ci_runs_tests_render_check_schema_check_and_lint() -> None:
    job = load("ci.yml")["jobs"]["test"]
    scripts = "\n".join(str(s.get("run", "")) for s in steps(job))
    assert "python -m pytest -q" in scripts
    assert "envspec render --all --out rendered --check" in scripts
    assert "envspec schema --check" in scripts
    assert "check-jsonschema --builtin-schema vendor.github-workflows" in scripts
    python = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/setup-python")]
    assert python and python[0]["with"]["python-version"] == "3.11"


def test_preview_and_production_share_the_reusable_deploy() -> None:
    preview = load("preview.yml")["jobs"]["deploy"]
    production = load("production.yml")["jobs"]["deploy"]
    assert preview["uses"] == production["uses"] == "./.github/workflows/deploy.yml"
    assert preview["with"]["environment"] == "preview-pr" and preview["with"]["github-environment"] == "preview"
    assert production["with"]["environment"] == "production" and production["with"]["github-environment"] == "production"
    assert production["with"]["confirm"] is True and "confirm" not in preview["with"]
    # apply appears in exactly one workflow file: the reusable one
    applying = [p.name for p in WORKFLOWS.glob("*.yml") if re.search(r"envspec apply\s", p.read_text(encoding="utf-8"))]
    assert applying == ["deploy.yml"]


def test_deploy_and_cleanup_share_one_concurrency_group_per_pr() -> None:
    deploy = load("preview.yml")["jobs"]["deploy"]["concurrency"]
    cleanup = load("cleanup.yml")["jobs"]["destroy"]["concurrency"]
    assert deploy["group"] == cleanup["group"]
    assert "github.event.pull_request.number" in deploy["group"]
    assert deploy["cancel-in-progress"] is True  # an older commit never deploys after a newer one
    assert cleanup["cancel-in-progress"] is False  # cleanup queues behind a deploy and is never cut short
    # deploy.yml must not declare the same group itself: a called workflow would wait on its caller forever
    assert "concurrency" not in load("deploy.yml") and "concurrency" not in load("deploy.yml")["jobs"]["deploy"]


def test_every_pr_triggered_job_has_the_fork_guard() -> None:
    for name in PR_TRIGGERED:
        for job_id, job in load(name)["jobs"].items():
            assert FORK_GUARD in str(job.get("if", "")), f"{name}: job {job_id} lacks the fork guard"


def test_no_secret_in_a_job_without_the_fork_guard() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = load(path.name)
        if "pull_request" not in workflow["on"] and "pull_request_target" not in workflow["on"]:
            continue
        assert "pull_request_target" not in workflow["on"], f"{path.name}: pull_request_target runs fork code with secrets"
        for job_id, job in workflow["jobs"].items():
            text = repr(job)
            touches_secrets = "secrets." in text or job.get("secrets") == "inherit" or "environment" in job
            if touches_secrets:
                assert FORK_GUARD in str(job.get("if", "")), f"{path.name}: job {job_id} sees secrets without the guard"


def test_reusable_deploy_repeats_the_fork_guard() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    assert FORK_GUARD in job["if"] and "inputs.pr == ''" in job["if"]


def test_apply_runs_in_a_protected_environment_after_pr_check() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    assert job["environment"]["name"] == "${{ inputs.github-environment }}"
    check, apply = step_running(job, "envspec pr-check"), step_running(job, "envspec apply")
    assert check == apply - 1, "pr-check must run immediately before apply"
    assert steps(job)[check]["if"] == "inputs.pr != ''"
    assert "--head-sha" in steps(job)[check]["run"]
    assert "--timeout" in steps(job)[apply]["run"] and "$CONFIRM" in steps(job)[apply]["run"]
    assert steps(job)[apply]["env"]["CONFIRM"] == "${{ inputs.confirm && '--yes' || '' }}"


def test_deploy_health_checks_and_comment() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    apply = step_running(job, "envspec apply")
    health = step_running(job, "curl")
    comment = step_running(job, "envspec comment")
    assert apply < health < comment
    assert "--retry" in steps(job)[health]["run"] and "envspec outputs" in steps(job)[health]["run"]
    assert steps(job)[comment]["if"].startswith("always()")
    assert "--post" in steps(job)[comment]["run"] and "--kind failed" in steps(job)[comment]["run"]
    kubeconfig = step_running(job, "envspec kubeconfig")
    assert kubeconfig < apply


def test_cleanup_destroys_verifies_and_comments() -> None:
    job = load("cleanup.yml")["jobs"]["destroy"]
    destroy = step_running(job, "envspec destroy")
    verify = step_running(job, "kubectl")
    comment = step_running(job, "envspec comment")
    assert destroy < verify < comment
    assert "pipefail" in steps(job)[destroy]["run"]  # a failed database drop fails the step despite `tee`
    assert steps(job)[comment]["if"] == "always()" and "--kind destroyed" in steps(job)[comment]["run"]
    checkout = steps(job)[0]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"  # never the PR's code


def test_plan_job_posts_the_plan_comment_with_the_diff_artifact() -> None:
    job = load("preview.yml")["jobs"]["plan"]
    diff, comment = step_running(job, "envspec diff"), step_running(job, "envspec comment")
    assert diff < comment
    assert "--json-out" in steps(job)[diff]["run"] and "--changes" in steps(job)[comment]["run"]
    artifacts = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert artifacts and artifacts[0]["with"]["name"] == "envspec-diff"
    assert job["environment"] == "preview-plan"


def test_images_are_passed_as_full_digests() -> None:
    build = load("build-images.yml")
    script = next(s["run"] for s in steps(build["jobs"]["build"]) if s.get("id") == "refs")
    assert "^sha256:[0-9a-f]{64}$" in script
    assert load("preview.yml")["jobs"]["deploy"]["with"]["web-image"] == "${{ needs.images.outputs.web-image }}"


def test_least_privilege_permissions() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = load(path.name)
        text = path.read_text(encoding="utf-8")
        assert "write-all" not in text, path.name
        if path.name == "deploy.yml":
            assert "permissions" not in workflow  # inherits (and can only narrow) the caller's grant
            continue
        assert workflow.get("permissions") == {"contents": "read"}, path.name
        for job_id, job in workflow["jobs"].items():
            for scope, level in (job.get("permissions") or {}).items():
                if level == "write":
                    assert scope in {"pull-requests", "packages"}, f"{path.name}: {job_id} writes {scope}"


def test_actions_are_pinned_to_major_versions() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.search(r"uses:\s*(\S+)", line)
            if match and not match.group(1).startswith("./"):
                pinned = re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match.group(1)) and re.search(r"#\s*v\d", line)
                assert pinned or re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", match.group(1)), f"{path.name}: {line.strip()}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_expression_injection_or_inline_secrets_in_scripts(name: str) -> None:
    """Untrusted PR text never reaches a shell, and secrets reach scripts only through env."""
    for job in load(name)["jobs"].values():
        for step in steps(job):
            script = str(step.get("run", ""))
            assert "${{ secrets." not in script, f"{name}: inline secret in {step.get('name')}"
            for field in ("title", "body", "head.ref", "head.label"):
                assert f"github.event.pull_request.{field}" not in script, f"{name}: {field} in a script"
