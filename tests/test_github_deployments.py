"""GitHub Deployments of an instance, against the fake GitHub API over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.cli import main
from envspec.github import deployments
from envspec.github.api import GitHubClient
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401  (fixture)

REPO = "aphiria/aphiria.com"
ROOT = Path(__file__).resolve().parent.parent
SHA = "a" * 40
RUN = "https://github.com/aphiria/aphiria.com/actions/runs/1"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [*args, "--root", str(ROOT)])


def test_a_preview_deploy_is_a_deployment_of_its_instance_in_progress_then_success(fake_github: FakeGitHub) -> None:
    result = run("github-deployment", "preview-pr", "--pr", "107", "--state", "in_progress", "--sha", SHA, "--log-url", RUN)
    assert result.exit_code == 0, result.output
    deployment_id = int(result.stdout.strip())
    created = fake_github.deployments[deployment_id]
    assert created["environment"] == "preview-pr-107"
    assert created["ref"] == SHA and created["transient_environment"] is True
    assert "ghcr.io/aphiria/aphiria.com-web:pr-107" in created["payload"]["images"]
    assert created["payload"]["pr_number"] == 107
    assert fake_github.states_of(deployment_id) == ["in_progress"]

    result = run("github-deployment", "preview-pr", "--pr", "107", "--state", "success", "--sha", SHA, "--url-output", "webUrl")
    assert result.exit_code == 0, result.output
    assert fake_github.states_of(deployment_id) == ["in_progress", "success"]
    assert fake_github.deployments[deployment_id]["statuses"][-1]["environment_url"] == "https://107.pr.aphiria.com"


def test_a_failed_deploy_links_the_log_and_no_environment_url(fake_github: FakeGitHub) -> None:
    assert run("github-deployment", "preview-pr", "--pr", "5", "--state", "in_progress", "--sha", SHA).exit_code == 0
    result = run("github-deployment", "preview-pr", "--pr", "5", "--state", "failure", "--sha", SHA, "--log-url", RUN,
                 "--url-output", "webUrl")
    assert result.exit_code == 0, result.output
    [deployment] = fake_github.deployments_of(REPO, "preview-pr-5")
    status = deployment["statuses"][-1]
    assert (status["state"], status["log_url"], status["environment_url"]) == ("failure", RUN, "")


def test_finish_picks_the_deployment_of_that_commit(fake_github: FakeGitHub) -> None:
    client = GitHubClient.from_env()
    old = deployments.start(client, REPO, environment="preview-pr-9", sha="1" * 40)
    new = deployments.start(client, REPO, environment="preview-pr-9", sha="2" * 40)
    deployments.finish(client, REPO, environment="preview-pr-9", sha="1" * 40, state="success",
                       environment_url="https://9.example.test")
    assert fake_github.states_of(old.id) == ["in_progress", "success"]
    assert fake_github.states_of(new.id) == ["in_progress"]


def test_cleanup_marks_every_deployment_of_the_instance_inactive_across_pages(fake_github: FakeGitHub) -> None:
    client = GitHubClient(base_url=fake_github.url, token=fake_github.token, per_page=2)
    ids = [deployments.start(client, REPO, environment="preview-pr-3", sha=f"{i:040x}").id for i in range(5)]
    other = deployments.start(client, REPO, environment="preview-pr-30", sha=SHA).id
    assert sorted(deployments.deactivate(client, REPO, environment="preview-pr-3")) == ids
    assert all(fake_github.states_of(i)[-1] == "inactive" for i in ids)
    assert fake_github.states_of(other) == ["in_progress"]  # preview-pr-30 is not preview-pr-3
    # Twice is harmless: nothing left to mark.
    assert deployments.deactivate(client, REPO, environment="preview-pr-3") == []


def test_cli_inactive_after_destroy(fake_github: FakeGitHub) -> None:
    assert run("github-deployment", "preview-pr", "--pr", "8", "--state", "in_progress", "--sha", SHA).exit_code == 0
    result = run("github-deployment", "preview-pr", "--pr", "8", "--state", "inactive")
    assert result.exit_code == 0, result.output
    [deployment] = fake_github.deployments_of(REPO, "preview-pr-8")
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", "inactive"]


def test_production_is_recorded_the_same_way(fake_github: FakeGitHub) -> None:
    result = run("github-deployment", "production", "--state", "in_progress", "--sha", SHA, "--production-environment")
    assert result.exit_code == 0, result.output
    [deployment] = fake_github.deployments_of(REPO, "production")
    assert deployment["production_environment"] is True and deployment["transient_environment"] is False
    assert any("@sha256:" in image for image in deployment["payload"]["images"])
    assert run("github-deployment", "production", "--state", "success", "--sha", SHA, "--url-output", "webUrl").exit_code == 0
    assert deployment["statuses"][-1]["environment_url"] == "https://www.aphiria.com"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "in_progress"], "--state in_progress needs --sha"),
        (["--state", "in_progress", "--sha", "main"], "--sha must be a full commit SHA"),
        (["--state", "success", "--sha", SHA, "--url-output", "nope"], "--url-output nope: preview-pr declares no such output"),
        (["--state", "success", "--sha", SHA, "--environment-url", "ftp://x"], "must be an http(s) URL"),
    ],
)
def test_bad_flags_are_user_errors_before_any_request(fake_github: FakeGitHub, args: list[str], message: str) -> None:
    result = run("github-deployment", "preview-pr", "--pr", "1", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert fake_github.count("/deployments") == 0


def test_finishing_a_deployment_never_started_is_an_operation_error(fake_github: FakeGitHub) -> None:
    result = run("github-deployment", "preview-pr", "--pr", "1", "--state", "success", "--sha", SHA)
    assert result.exit_code == 3
    assert "no GitHub deployment of preview-pr-1" in result.output
