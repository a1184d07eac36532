"""Posting the PR comment: only a comment the token's own identity wrote is ever edited."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.errors import EXIT_OPERATION
from envspec.github.api import GitHubClient, GitHubError
from envspec.github.post import GITHUB_ACTIONS_BOT, Author, token_author, upsert_comment
from tests.fakes.github_server import ACTIONS_BOT, HUMAN, FakeGitHub, fake_github  # noqa: F401  (fixture)

REPO = "aphiria/aphiria.com"
MARKER = "<!-- envspec:preview-pr-107 -->"
ROOT = Path(__file__).resolve().parent.parent


def patched_ids(fake: FakeGitHub) -> list[int]:
    return [int(r.path.rsplit("/", 1)[1]) for r in fake.requests if r.method == "PATCH"]


def test_github_token_is_github_actions_bot(fake_github: FakeGitHub) -> None:
    """An installation token may not call GET /user (403); its comments are by github-actions[bot]."""
    assert token_author(GitHubClient.from_env()) == Author(GITHUB_ACTIONS_BOT, "Bot")
    assert fake_github.count("/user", method="GET") == 1


def test_a_personal_token_is_whoever_get_user_names(fake_github: FakeGitHub) -> None:
    fake_github.user = {"login": "Deploy-Bot", "type": "User"}
    assert token_author(GitHubClient.from_env()) == Author("Deploy-Bot", "User")


def test_a_foreign_comment_carrying_the_marker_is_never_taken_over(fake_github: FakeGitHub) -> None:
    foreign = fake_github.add_comment(REPO, 107, f"{MARKER}\nlooks like envspec, written by a person", author=HUMAN)
    client = GitHubClient.from_env()

    action, ours = upsert_comment(client, REPO, 107, f"{MARKER}\nplan", MARKER)
    assert action == "created" and ours != foreign
    action, again = upsert_comment(client, REPO, 107, f"{MARKER}\ndeployed", MARKER)
    assert (action, again) == ("updated", ours)

    assert fake_github.comment(foreign)["body"] == f"{MARKER}\nlooks like envspec, written by a person"
    assert fake_github.comment(ours)["body"] == f"{MARKER}\ndeployed"
    assert fake_github.comment(ours)["user"] == ACTIONS_BOT
    assert patched_ids(fake_github) == [ours]


def test_a_user_calling_itself_the_bot_is_not_the_bot(fake_github: FakeGitHub) -> None:
    """The Bot type must match too; only GitHub can make a Bot account."""
    impostor = fake_github.add_comment(REPO, 107, f"{MARKER}\nhi", author={"login": GITHUB_ACTIONS_BOT, "type": "User"})
    action, ours = upsert_comment(GitHubClient.from_env(), REPO, 107, f"{MARKER}\nplan", MARKER)
    assert action == "created" and ours != impostor
    assert fake_github.comment(impostor)["body"] == f"{MARKER}\nhi"


def test_with_a_personal_token_only_that_users_comment_is_updated(fake_github: FakeGitHub) -> None:
    fake_github.user = {"login": "deploy-bot", "type": "User"}
    bots = fake_github.add_comment(REPO, 107, f"{MARKER}\nfrom another workflow", author=ACTIONS_BOT)
    mine = fake_github.add_comment(REPO, 107, f"{MARKER}\nold", author={"login": "DEPLOY-BOT", "type": "User"})
    action, comment_id = upsert_comment(GitHubClient.from_env(), REPO, 107, f"{MARKER}\nnew", MARKER)
    assert (action, comment_id) == ("updated", mine)  # logins compare case-insensitively, as on GitHub
    assert fake_github.comment(bots)["body"] == f"{MARKER}\nfrom another workflow"
    assert fake_github.comment(mine)["body"] == f"{MARKER}\nnew"


def test_an_explicit_author_skips_the_lookup(fake_github: FakeGitHub) -> None:
    """For another GitHub App's installation token, whose comments are `<app>[bot]`."""
    app = {"login": "envspec-app[bot]", "type": "Bot"}
    existing = fake_github.add_comment(REPO, 107, f"{MARKER}\nold", author=app)
    fake_github.user = app  # what the fake writes as on PATCH/POST
    result = upsert_comment(GitHubClient.from_env(), REPO, 107, f"{MARKER}\nnew", MARKER,
                            author=Author("envspec-app[bot]", "Bot"))
    assert result == ("updated", existing)
    assert fake_github.count("/user") == 0


def test_a_rejected_token_fails_before_any_write(fake_github: FakeGitHub) -> None:
    client = GitHubClient(base_url=fake_github.url, token="not-the-token")
    with pytest.raises(GitHubError) as info:
        upsert_comment(client, REPO, 107, f"{MARKER}\nplan", MARKER)
    assert info.value.status == 401 and info.value.exit_code == EXIT_OPERATION
    assert "GET /user failed: 401 Bad credentials" in str(info.value)
    assert "not-the-token" not in str(info.value)
    assert fake_github.comments == {}


def test_comment_post_end_to_end_leaves_a_foreign_marked_comment_alone(fake_github: FakeGitHub) -> None:
    from envspec.cli import main

    marker = "<!-- envspec:preview-pr-5 -->"
    foreign = fake_github.add_comment(REPO, 5, f"{marker}\nnot envspec's")
    args = ["comment", "preview-pr", "--root", str(ROOT), "--kind", "deployed", "--pr", "5", "--post"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    bodies = fake_github.comments_on(REPO, 5)
    assert bodies[0] == f"{marker}\nnot envspec's"
    assert len(bodies) == 2 and bodies[1].startswith(f"{marker}\n### envspec: Deployed `preview-pr-5`")
    assert patched_ids(fake_github) == [foreign + 1]
