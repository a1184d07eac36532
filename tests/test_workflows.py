"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, and holding the rules of the PR flow.

GitHub is not reachable here, so the lints are offline: check-jsonschema's
bundled copy of the workflow schema, and `zizmor --offline` (default persona).
The structural tests encode the failures the seed project had (racing cleanup
and deploy, old commits deploying after new ones, fork PRs near secrets,
steps duplicated between preview and production) and the trust boundary of
docs/pr-flow.md (privileged jobs run only the default branch's files; a PR
contributes a number, a SHA and two image digests) as assertions over the
parsed YAML. Rules that hold for every workflow are checked over every file in
.github/workflows, so a new workflow is held to them without editing this file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
DEFAULT_BRANCH_GUARD = "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
EXPECTED = {
    "ci.yml", "deploy.yml", "preview.yml", "preview-deploy.yml", "cleanup.yml", "gc.yml",
    "production.yml", "e2e.yml", "build-images.yml", "image.yml",
}
ALL = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
IMAGE_CHECK = r"@sha256:[0-9a-f]{64}$"


def load(name: str) -> dict[str, Any]:
    data = YAML(typ="safe").load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return set(on)
    return set(on or {})


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def all_steps() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in ALL:
        for job_id, job in load(name)["jobs"].items():
            for step in steps(job):
                yield name, job_id, step


def step_running(job: dict[str, Any], command: str) -> int:
    """Index of the first step whose script runs `command` (e.g. 'envspec apply')."""
    for index, step in enumerate(steps(job)):
        if re.search(rf"(^|\s){re.escape(command)}\s", str(step.get("run", ""))):
            return index
    raise AssertionError(f"no step runs {command!r}")


def step_with_id(job: dict[str, Any], step_id: str) -> int:
    for index, step in enumerate(steps(job)):
        if step.get("id") == step_id:
            return index
    raise AssertionError(f"no step with id {step_id!r}")


def privileged_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Jobs that hold a credential beyond a read-only token: a GitHub environment (its secrets) or `secrets.`."""
    for name in ALL:
        for job_id, job in load(name)["jobs"].items():
            if "environment" in job or "secrets." in repr(job):
                yield name, job_id, job


def zizmor_command() -> list[str]:
    exe = Path(sys.executable).with_name("zizmor")
    found = str(exe) if exe.exists() else shutil.which("zizmor")
    assert found, "zizmor is a test dependency (pip install -e '.[test]')"
    return [found]


# --- lints ------------------------------------------------------------------------------------


def test_all_expected_workflows_exist() -> None:
    assert EXPECTED <= set(ALL)


def test_workflows_pass_githubs_schema() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "check_jsonschema"]
    files = [str(WORKFLOWS / name) for name in ALL]
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


def test_zizmor_offline_reports_no_findings() -> None:
    """`zizmor --offline .github/workflows`, default persona: nothing to report (ignores carry a reason inline)."""
    result = subprocess.run(
        [*zizmor_command(), "--offline", "--no-progress", ".github/workflows"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout
    for line in (WORKFLOWS / name for name in ALL):
        for text in line.read_text(encoding="utf-8").splitlines():
            if "zizmor: ignore[" in text:
                assert re.search(r"zizmor: ignore\[[a-z-]+\]\s+--\s+\S", text), f"{line.name}: an ignore needs a reason: {text.strip()}"


def test_zizmor_catches_what_this_repository_fixed(tmp_path: Path) -> None:
    """The audit above can fail: an unpinned action, persisted credentials and `secrets: inherit` are findings."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text(
        "on: push\npermissions: {}\njobs:\n"
        "  a:\n    runs-on: ubuntu-latest\n    permissions: {}\n    steps:\n      - uses: actions/checkout@v4\n"
        "  b:\n    permissions: {}\n    uses: org/repo/.github/workflows/x.yml@main\n    secrets: inherit\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [*zizmor_command(), "--offline", "--no-progress", "--format", "plain", str(folder)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    for audit in ("unpinned-uses", "artipacked", "secrets-inherit"):
        assert f"[{audit}]" in result.stdout, result.stdout


def test_zizmor_is_a_test_dependency() -> None:
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["test"]
    assert any(re.match(r"zizmor\b", dep) for dep in test_extra)


# --- rules for every workflow -----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_every_remote_action_is_pinned_by_full_sha_with_a_version_comment(name: str) -> None:
    for line in (WORKFLOWS / name).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if not match or match.group(1).startswith(("./", "$/", "docker://")):
            continue
        assert SHA_PIN.match(match.group(1)), f"{name}: not pinned to a 40-hex commit: {line.strip()}"
        assert re.match(r"\s+#\s*v\d+(\.\d+)*\b", match.group(2)), f"{name}: no `# vX.Y.Z` comment: {line.strip()}"


def test_the_pin_check_rejects_a_tag_and_a_short_sha() -> None:
    assert not SHA_PIN.match("actions/checkout@v4")
    assert not SHA_PIN.match("actions/checkout@11bd719")
    assert SHA_PIN.match("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683")


@pytest.mark.parametrize("name", ALL)
def test_every_checkout_drops_its_credentials(name: str) -> None:
    for job_id, job in load(name)["jobs"].items():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("persist-credentials") is False, f"{name}: {job_id} persists the token"


@pytest.mark.parametrize("name", ALL)
def test_no_secrets_inherit_and_no_always(name: str) -> None:
    """Reusable workflows get only declared secrets; a cancelled run posts no 'failed' comment."""
    workflow = load(name)
    for job_id, job in workflow["jobs"].items():
        assert job.get("secrets") != "inherit", f"{name}: {job_id} passes every secret"
        conditions = [str(job.get("if", ""))] + [str(s.get("if", "")) for s in steps(job)]
        assert not any("always()" in c for c in conditions), f"{name}: {job_id} uses always(); use !cancelled()"


@pytest.mark.parametrize("name", ALL)
def test_least_privilege_permissions(name: str) -> None:
    workflow = load(name)
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert "write-all" not in text, name
    if "workflow_call" in triggers(workflow) and "permissions" not in workflow:
        pass  # a called workflow inherits (and could only narrow) its caller's grant
    else:
        assert workflow.get("permissions") in ({"contents": "read"}, {}), name
    for job_id, job in workflow["jobs"].items():
        for scope, level in (job.get("permissions") or {}).items():
            if level == "write":
                assert scope in {"pull-requests", "packages", "deployments"}, f"{name}: {job_id} writes {scope}"


@pytest.mark.parametrize("name", ALL)
def test_no_expression_injection_or_inline_secrets_in_scripts(name: str) -> None:
    """Untrusted PR text never reaches a shell, and secrets reach scripts only through env."""
    for job in load(name)["jobs"].values():
        for step in steps(job):
            script = str(step.get("run", ""))
            assert "${{ secrets." not in script, f"{name}: inline secret in {step.get('name')}"
            assert "${{ inputs." not in script, f"{name}: an input expanded into a script in {step.get('name')}"
            for field in ("title", "body", "head.ref", "head.label"):
                assert f"github.event.pull_request.{field}" not in script, f"{name}: {field} in a script"


def test_pull_request_workflows_hold_no_credential() -> None:
    """Whatever runs the PR's own files (`pull_request`) gets no secret and no environment: a PR author could edit it."""
    for name in ALL:
        workflow = load(name)
        if "pull_request" not in triggers(workflow):
            continue
        for job_id, job in workflow["jobs"].items():
            if re.search(r"github\.event_name == '(push|schedule|workflow_dispatch)'", str(job.get("if", ""))):
                continue  # never runs for a pull request
            assert "environment" not in job, f"{name}: {job_id} binds an environment in PR-controlled code"
            assert "secrets." not in repr(job) and "secrets" not in job, f"{name}: {job_id} sees a secret"
            if job.get("permissions", {}) and "write" in repr(job.get("permissions")):
                assert FORK_GUARD in str(job.get("if", "")), f"{name}: {job_id} writes without the fork guard"


def test_pull_request_target_jobs_carry_the_fork_guard_and_never_check_out_the_pr() -> None:
    for name in ALL:
        workflow = load(name)
        if "pull_request_target" not in triggers(workflow):
            continue
        for job_id, job in workflow["jobs"].items():
            assert FORK_GUARD in str(job.get("if", "")), f"{name}: {job_id} lacks the fork guard"
            assert "pull_request.head" not in repr(steps(job)), f"{name}: {job_id} refers to the PR's head"


def test_privileged_jobs_run_only_default_branch_code() -> None:
    """Every job that holds a credential runs from a trigger that uses the default branch's files, checks out
    only the workflow's own commit, and installs envspec from the hash-locked requirements."""
    privileged_triggers = {"workflow_run", "pull_request_target", "schedule", "workflow_dispatch", "workflow_call", "push"}
    seen = 0
    for name, job_id, job in privileged_jobs():
        seen += 1
        workflow = load(name)
        assert triggers(workflow) <= privileged_triggers, f"{name}: {job_id} has a credential under {triggers(workflow)}"
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                ref = (step.get("with") or {}).get("ref", "${{ github.sha }}")
                assert ref == "${{ github.sha }}", f"{name}: {job_id} checks out {ref}, not the workflow's own commit"
            for line in str(step.get("run", "")).splitlines():
                if re.search(r"pip install\b", line):
                    assert ("--require-hashes -r requirements/deploy.txt" in line) or line.rstrip().endswith("--no-deps ."), (
                        f"{name}: {job_id} installs without hashes: {line.strip()}"
                    )
    assert seen >= 4


def test_privileged_jobs_are_limited_to_the_default_branch() -> None:
    for name in ("deploy.yml", "gc.yml"):
        for job in load(name)["jobs"].values():
            assert DEFAULT_BRANCH_GUARD in str(job["if"]), name
    for job in load("production.yml")["jobs"].values():
        assert DEFAULT_BRANCH_GUARD in str(job["if"])
    assert "github.event.pull_request.base.ref == github.event.repository.default_branch" in load("cleanup.yml")["jobs"]["destroy"]["if"]


def test_derived_kubeconfigs_are_masked() -> None:
    """Every step that writes a kubeconfig masks the credentials in it before anything else can print them."""
    writers = 0
    for name, job_id, job in privileged_jobs():
        for step in steps(job):
            script = str(step.get("run", ""))
            if re.search(r'> "\$RUNNER_TEMP/kubeconfig"|--out "\$RUNNER_TEMP/kubeconfig"', script):
                writers += 1
                assert "mask-kubeconfig.py" in script, f"{name}: {job_id} writes a kubeconfig without ::add-mask::"
    assert writers >= 4


def test_the_mask_script_masks_tokens_and_keys(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user: {token: tok-123456}\n"
        "- name: b\n  user: {client-key-data: S0VZREFUQQ==, client-certificate-data: Q0VSVA==}\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://1.2.3.4', certificate-authority-data: Q0E=}\n",
        encoding="utf-8",
    )
    result = subprocess.run([sys.executable, str(GITHUB / "scripts" / "mask-kubeconfig.py"), str(kubeconfig)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    masked = set(result.stdout.splitlines())
    assert {"::add-mask::tok-123456", "::add-mask::S0VZREFUQQ==", "::add-mask::Q0VSVA=="} <= masked
    assert not any("1.2.3.4" in line or "Q0E=" in line for line in masked)  # public data stays readable


def test_tools_are_installed_at_pinned_versions_with_checksums() -> None:
    for name, job_id, step in all_steps():
        script = str(step.get("run", ""))
        for tool in ("kubectl", "helm"):
            if re.search(rf"curl[^\n]*/{tool}\b|curl[^\n]*{tool}-", script):
                assert "sha256sum --check" in script, f"{name}: {job_id} downloads {tool} without a checksum"
                version = (step.get("env") or {}).get(f"{tool.upper()}_VERSION", "")
                assert re.fullmatch(r"v\d+\.\d+\.\d+", version), f"{name}: {job_id}: {tool} version not pinned"
                assert re.fullmatch(r"[0-9a-f]{64}", (step.get("env") or {}).get(f"{tool.upper()}_SHA256", ""))


# --- the PR flow ------------------------------------------------------------------------------


def test_triggers() -> None:
    assert triggers(load("ci.yml")) == {"push", "pull_request"}
    assert load("preview.yml")["on"] == {"pull_request": {"types": ["opened", "synchronize", "reopened"]}}
    assert load("preview-deploy.yml")["on"] == {"workflow_run": {"workflows": ["preview"], "types": ["completed"]}}
    assert load("cleanup.yml")["on"] == {"pull_request_target": {"types": ["closed"]}}
    assert triggers(load("gc.yml")) == {"schedule", "workflow_dispatch"}
    assert triggers(load("production.yml")) == {"push", "workflow_dispatch"}
    assert triggers(load("e2e.yml")) == {"push", "workflow_dispatch"}
    call = load("deploy.yml")["on"]["workflow_call"]
    assert {"environment", "github-environment", "pr", "head-sha", "web-image", "api-image"} <= set(call["inputs"])


def test_ci_runs_tests_render_check_schema_check_and_lints() -> None:
    job = load("ci.yml")["jobs"]["test"]
    scripts = "\n".join(str(s.get("run", "")) for s in steps(job))
    assert "python -m pytest -q" in scripts
    assert "envspec render --all --out rendered --check" in scripts
    assert "envspec schema --check" in scripts
    assert "check-jsonschema --builtin-schema vendor.github-workflows" in scripts
    assert "zizmor --offline .github/workflows" in scripts
    python = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/setup-python")]
    assert python and python[0]["with"]["python-version"] == "3.11"


def test_the_pr_contributes_only_validated_values() -> None:
    """preview.yml (PR code, no credential) hands over four values; preview-deploy.yml validates each."""
    request = load("preview.yml")["jobs"]["request"]
    assert request["permissions"] == {}
    job = load("preview-deploy.yml")["jobs"]["request"]
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in job["if"]
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    validate = steps(job)[step_with_id(job, "validate")]
    script = validate["run"]
    assert validate["env"]["RUN_HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert "^[1-9][0-9]{0,8}$" in script and "^[0-9a-f]{40}$" in script and '== "$RUN_HEAD_SHA"' in script
    assert script.count(IMAGE_CHECK) == 2 and "-web@" in script and "-api@" in script
    assert 'gh api "repos/$GITHUB_REPOSITORY/pulls/$pr"' in script  # same repository, same head, per GitHub
    # The privileged jobs read the PR's values only from the validated outputs, never from the event or artifact.
    for later in ("plan", "deploy"):
        text = repr(load("preview-deploy.yml")["jobs"][later])
        assert "github.event.workflow_run" not in text and "needs.request.outputs.pr" in text


def test_plan_runs_default_branch_code_without_secret_access() -> None:
    job = load("preview-deploy.yml")["jobs"]["plan"]
    assert job["environment"] == "preview-plan"
    diff, comment = step_running(job, "envspec diff"), step_running(job, "envspec comment")
    assert diff < comment
    assert "--json-out" in steps(job)[diff]["run"] and "--changes" in steps(job)[comment]["run"]
    assert steps(job)[diff]["env"] == {"PLAN_KUBECONFIG": "${{ secrets.PLAN_KUBECONFIG }}",
                                       "DIGITALOCEAN_TOKEN": "${{ secrets.DIGITALOCEAN_READ_TOKEN }}"}
    artifacts = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert artifacts and artifacts[0]["with"]["name"] == "envspec-diff"


def test_preview_and_production_share_the_reusable_deploy() -> None:
    preview = load("preview-deploy.yml")["jobs"]["deploy"]
    production = load("production.yml")["jobs"]["deploy"]
    assert preview["uses"] == production["uses"] == "./.github/workflows/deploy.yml"
    assert preview["with"]["environment"] == "preview-pr" and preview["with"]["github-environment"] == "preview"
    assert production["with"]["environment"] == "production" and production["with"]["github-environment"] == "production"
    assert production["with"]["confirm"] is True and "confirm" not in preview["with"]
    assert "secrets" not in preview and "secrets" not in production  # environment secrets, read by name
    applying = [n for n in ALL if re.search(r"envspec apply\s", (WORKFLOWS / n).read_text(encoding="utf-8"))]
    assert applying == ["deploy.yml"]


def test_deploy_and_cleanup_never_share_a_concurrency_group() -> None:
    """A newer deploy cancels older deploys only; nothing can cancel (or queue in front of) a cleanup."""
    deploy = load("preview-deploy.yml")["jobs"]["deploy"]["concurrency"]
    cleanup = load("cleanup.yml")["jobs"]["destroy"]["concurrency"]
    assert deploy["cancel-in-progress"] is True and cleanup["cancel-in-progress"] is False
    assert deploy["group"].startswith("preview-deploy-") and cleanup["group"].startswith("preview-cleanup-")
    assert "github.event.pull_request.number" in cleanup["group"]
    prefix = cleanup["group"].split("${{")[0]
    for name in ALL:
        for job_id, job in load(name)["jobs"].items():
            group = str((job.get("concurrency") or {}).get("group", ""))
            if (name, job_id) != ("cleanup.yml", "destroy"):
                assert not group.startswith(prefix), f"{name}: {job_id} shares the cleanup group"
    # deploy.yml must not declare a group itself: a called workflow would wait on its caller forever
    assert "concurrency" not in load("deploy.yml") and "concurrency" not in load("deploy.yml")["jobs"]["deploy"]


def test_deploy_destroys_instead_when_the_pr_closed() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    state, destroy = step_with_id(job, "pr-state"), step_with_id(job, "destroy")
    check, apply, after = step_with_id(job, "pr-check"), step_with_id(job, "apply"), step_with_id(job, "destroy-after")
    assert state < destroy < check < apply < after
    assert "steps.pr-state.outputs.state == 'closed'" in steps(job)[destroy]["if"]
    assert "envspec destroy" in steps(job)[destroy]["run"] and "envspec destroy" in steps(job)[after]["run"]
    assert "steps.pr-state.outputs.state == 'open'" in steps(job)[check]["if"]
    assert "steps.pr-state.outputs.state == 'open'" in steps(job)[apply]["if"]
    assert "--head-sha" in steps(job)[check]["run"]
    assert steps(job)[apply]["env"]["CONFIRM"] == "${{ inputs.confirm && '--yes' || '' }}"


def test_deploy_runs_in_a_protected_environment_with_the_default_branch_checkout() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    assert job["environment"]["name"] == "${{ inputs.github-environment }}"
    validate = steps(job)[0]["run"]
    assert validate.count(IMAGE_CHECK) == 2 and "^[0-9a-f]{40}$" in validate


def test_production_refuses_anything_but_the_default_branch_head() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    head, apply = step_with_id(job, "head-check"), step_with_id(job, "apply")
    assert head < apply and steps(job)[head]["if"] == "inputs.pr == ''"
    script = steps(job)[head]["run"]
    assert "branches/$DEFAULT_BRANCH" in script and '"$HEAD_SHA"' in script and '"$GITHUB_SHA"' in script
    promote = load("production.yml")["jobs"]["promote"]
    assert steps(promote)[0]["run"].count(IMAGE_CHECK) == 2
    deploy = load("production.yml")["jobs"]["deploy"]
    assert deploy["with"]["head-sha"] == "${{ github.sha }}"
    assert "needs.promote.outputs.web-image" in deploy["with"]["web-image"]  # never the raw dispatch input


def test_deploy_health_checks_and_comment() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    apply, health, comment = step_running(job, "envspec apply"), step_running(job, "curl --fail"), step_running(job, "envspec comment")
    assert apply < health < comment
    assert "--retry" in steps(job)[health]["run"] and "envspec outputs" in steps(job)[health]["run"]
    assert steps(job)[comment]["if"].startswith("!cancelled()")
    assert "--post" in steps(job)[comment]["run"] and "--kind failed" in steps(job)[comment]["run"]
    # The comment's redactor gets every secret apply had, so the log tail it posts is scrubbed of them.
    apply_secrets = {k for k, v in steps(job)[apply]["env"].items() if "secrets." in str(v)}
    comment_secrets = {k for k, v in steps(job)[comment]["env"].items() if "secrets." in str(v)}
    assert apply_secrets and apply_secrets <= comment_secrets


def test_cleanup_checks_the_pr_is_still_closed_then_destroys_verifies_and_comments() -> None:
    job = load("cleanup.yml")["jobs"]["destroy"]
    assert job["environment"] == "preview-cleanup"
    state = steps(job)[0]
    assert state["id"] == "state" and "pulls/$PR" in state["run"]
    for step in steps(job)[1:]:
        assert "steps.state.outputs.state == 'closed'" in str(step.get("if")), step.get("name")
    destroy, verify, comment = step_running(job, "envspec destroy"), step_running(job, "kubectl get"), step_running(job, "envspec comment")
    assert destroy < verify < comment
    assert "pipefail" in steps(job)[destroy]["run"]  # a failed database drop fails the step despite `tee`
    assert "--kind destroyed" in steps(job)[comment]["run"]
    # The cleanup credential is the cleanup ServiceAccount; its DigitalOcean token is the read-only one.
    assert "secrets.DIGITALOCEAN_TOKEN" not in repr(job) and "secrets.DIGITALOCEAN_READ_TOKEN" in repr(job)


def test_gc_runs_on_a_schedule_with_the_cleanup_credential() -> None:
    workflow = load("gc.yml")
    assert workflow["on"]["schedule"]
    job = workflow["jobs"]["gc"]
    assert job["environment"] == "preview-cleanup"
    assert "envspec gc" in steps(job)[step_running(job, "envspec gc")]["run"]


def test_images_are_passed_as_full_digests() -> None:
    build = load("build-images.yml")
    script = next(s["run"] for s in steps(build["jobs"]["build"]) if s.get("id") == "refs")
    assert "^sha256:[0-9a-f]{64}$" in script
    request = load("preview.yml")["jobs"]["request"]
    assert steps(request)[0]["env"]["WEB_IMAGE"] == "${{ needs.images.outputs.web-image }}"


# --- supply chain and review ------------------------------------------------------------------


def _requirement_names(text: str) -> set[str]:
    return {re.split(r"[=<>;\s\[]", line, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
            for line in text.splitlines() if re.match(r"^[A-Za-z]", line)}


def test_the_deploy_lock_pins_every_dependency_by_hash() -> None:
    text = (ROOT / "requirements" / "deploy.txt").read_text(encoding="utf-8")
    entries = re.findall(r"^([A-Za-z][^\s=]*)==(\S+)(.*?)(?=^[A-Za-z]|\Z)", text, flags=re.M | re.S)
    assert entries
    for name, version, rest in entries:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", rest), f"{name}=={version} has no hash"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    missing = _requirement_names("\n".join(declared)) - _requirement_names(text)
    assert not missing, f"requirements/deploy.txt lacks {sorted(missing)}: regenerate it (see its header)"


def test_dependabot_updates_actions_and_pip() -> None:
    config = YAML(typ="safe").load((GITHUB / "dependabot.yml").read_text(encoding="utf-8"))
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"github-actions", "pip"} <= set(ecosystems)
    assert ecosystems["pip"]["directory"] == "/requirements"


def test_codeowners_guard_workflows_and_environments() -> None:
    rules = [line.split() for line in (GITHUB / "CODEOWNERS").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    paths = {rule[0] for rule in rules if len(rule) >= 2}
    assert {"/.github/", "/environments/"} <= paths


def test_deploy_records_a_github_deployment_around_apply() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    start, apply = step_running(job, "--state in_progress"), step_running(job, "envspec apply")
    finish = next(i for i, step in enumerate(steps(job)) if "--url-output webUrl" in str(step.get("run", "")))
    comment = step_running(job, "envspec comment")
    assert start < apply < finish < comment
    assert "--state failure" in steps(job)[finish]["run"] and "--log-url" in steps(job)[finish]["run"]
    assert steps(job)[finish]["if"].startswith("!cancelled()")
    assert "--deploy-seconds" in steps(job)[comment]["run"] and "--build-seconds" in steps(job)[comment]["run"]
    for caller, job_id in (("preview-deploy.yml", "deploy"), ("production.yml", "deploy")):
        assert load(caller)["jobs"][job_id]["permissions"].get("deployments") == "write", caller


def test_cleanup_retires_the_deployment_and_deletes_exactly_the_prs_images() -> None:
    job = load("cleanup.yml")["jobs"]["destroy"]
    destroy, inactive = step_running(job, "envspec destroy"), step_running(job, "--state inactive")
    images, comment = step_running(job, "envspec delete-images"), step_running(job, "envspec comment")
    assert destroy < inactive < comment and destroy < images < comment
    assert "--protect-env production" in steps(job)[images]["run"]
    assert job["permissions"]["packages"] == "write" and job["permissions"]["deployments"] == "write"
