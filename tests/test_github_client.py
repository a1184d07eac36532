"""envspec's GitHub client against the fake GitHub API: whose comments are ours, and where the token may go."""

from __future__ import annotations

import pytest

from envspec.github.api import GitHubClient, GitHubError, graphql_url, within_api
from envspec.github.post import GITHUB_ACTIONS_BOT, Author, token_author, upsert_comment
from tests.fakes.github_server import ACTIONS_BOT, FakeGitHub, fake_github  # noqa: F401  (fixture)

REPO = "aphiria/aphiria.com"
MARKER = "<!-- envspec:preview-pr-107 -->"
APP = {"login": "envspec-deployer[bot]", "type": "Bot", "id": 777}


def test_an_installation_token_is_identified_by_graphql_viewer(fake_github: FakeGitHub) -> None:
    author = token_author(GitHubClient.from_env())
    assert author == Author(GITHUB_ACTIONS_BOT, "Bot") and author.id == ACTIONS_BOT["id"]
    assert fake_github.count("/user", method="GET") == 1 and fake_github.count("/graphql", method="POST") == 1


def test_a_dedicated_app_never_edits_a_comment_any_workflow_token_wrote(fake_github: FakeGitHub) -> None:
    """The bug: a 403 from /user meant github-actions[bot], so any workflow's GITHUB_TOKEN could plant the comment."""
    fake_github.viewer = APP
    planted = fake_github.add_comment(REPO, 107, f"{MARKER}\nplan: nothing to see", author=ACTIONS_BOT)
    client = GitHubClient.from_env()
    assert token_author(client) == Author("envspec-deployer[bot]", "Bot")

    action, ours = upsert_comment(client, REPO, 107, f"{MARKER}\nreal plan", MARKER)
    assert action == "created" and ours != planted
    assert fake_github.comment(planted)["body"] == f"{MARKER}\nplan: nothing to see"
    assert fake_github.comment(ours)["user"] == APP
    assert upsert_comment(client, REPO, 107, f"{MARKER}\ndeployed", MARKER) == ("updated", ours)


def test_when_github_cannot_say_who_the_token_is_nothing_is_posted(fake_github: FakeGitHub) -> None:
    fake_github.add_fault(path_regex="^/graphql$", status=502, message="Bad Gateway")
    with pytest.raises(GitHubError, match="cannot tell which comments are ours"):
        upsert_comment(GitHubClient.from_env(), REPO, 107, f"{MARKER}\nplan", MARKER)
    assert fake_github.count("/comments", method="POST") == 0 and fake_github.count("", method="PATCH") == 0


def test_a_graphql_error_answer_is_an_error_not_an_identity(fake_github: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match="only the viewer query"):
        GitHubClient.from_env().graphql("query { rateLimit { remaining } }")


def test_comments_match_on_the_account_id(fake_github: FakeGitHub) -> None:
    """A renamed-and-reused login is another account: same login, other id, not ours."""
    fake_github.user = {"login": "deploy-bot", "type": "User", "id": 5}
    reused = fake_github.add_comment(REPO, 107, f"{MARKER}\nold", author={"login": "deploy-bot", "type": "User", "id": 6})
    action, ours = upsert_comment(GitHubClient.from_env(), REPO, 107, f"{MARKER}\nplan", MARKER)
    assert action == "created" and ours != reused
    assert fake_github.comment(reused)["body"] == f"{MARKER}\nold"


def test_pagination_never_follows_a_link_to_another_origin(fake_github: FakeGitHub) -> None:
    with FakeGitHub() as elsewhere:
        fake_github.link_base = elsewhere.url
        for number in range(1, 6):
            fake_github.add_pull(REPO, number, state="closed")
        client = GitHubClient.from_env()
        client.per_page = 2
        with pytest.raises(GitHubError, match="refusing to follow a link to http://127.0.0.1:") as caught:
            client.closed_pull_numbers(REPO)
        assert elsewhere.requests == []  # the token never left
        assert fake_github.token not in str(caught.value)


def test_a_redirect_to_another_origin_is_refused_and_the_token_never_leaves(fake_github: FakeGitHub) -> None:
    """urllib follows 3xx and copies Authorization to whatever host the Location names."""
    with FakeGitHub(token=None) as elsewhere:
        elsewhere.add_pull(REPO, 7)
        fake_github.add_redirect(f"/repos/{REPO}/pulls/7", f"{elsewhere.url}/repos/{REPO}/pulls/7", status=302)
        with pytest.raises(GitHubError, match=r"refusing to follow a 302 redirect to http://127\.0\.0\.1:\d+, outside") as caught:
            GitHubClient.from_env().pull_request(REPO, 7)
        assert elsewhere.requests == []
        assert fake_github.token not in str(caught.value)


def test_a_redirect_within_the_api_is_followed_with_the_token(fake_github: FakeGitHub) -> None:
    """GitHub answers a renamed repository with a 301 to the API's own /repositories/{id}/...: still ours."""
    fake_github.add_pull("aphiria/renamed", 7)
    fake_github.add_redirect(f"/repos/{REPO}/pulls/7", f"{fake_github.url}/repos/aphiria/renamed/pulls/7")
    assert GitHubClient.from_env().pull_request(REPO, 7).number == 7
    assert [r.authorization for r in fake_github.requests] == [f"Bearer {fake_github.token}"] * 2


def test_pagination_raises_instead_of_truncating(fake_github: FakeGitHub) -> None:
    for number in range(1, 6):
        fake_github.add_pull(REPO, number, state="closed")
    client = GitHubClient.from_env()
    client.per_page = 2
    with pytest.raises(GitHubError, match="more than 2 pages; refusing to truncate"):
        list(client.paginate(f"/repos/{REPO}/pulls", {"state": "closed"}, max_pages=2))
    assert [p["number"] for p in client.paginate(f"/repos/{REPO}/pulls", {"state": "closed"}, max_pages=3)] == [1, 2, 3, 4, 5]
    assert client.closed_pull_numbers(REPO) == {1, 2, 3, 4, 5}


def test_an_absolute_url_outside_the_api_is_refused(fake_github: FakeGitHub) -> None:
    client = GitHubClient.from_env()
    with pytest.raises(GitHubError, match="refusing to send the token to https://example.test"):
        client.get_json("https://example.test/repos/x/y/pulls/1")
    assert fake_github.requests == []


@pytest.mark.parametrize(
    ("base", "url", "inside"),
    [
        ("https://api.github.com", "https://api.github.com/repos/a/b/pulls?page=2", True),
        ("https://api.github.com", "https://API.github.com/repos/a/b", True),
        ("https://api.github.com", "http://api.github.com/repos/a/b", False),
        ("https://api.github.com", "https://api.github.com.evil.test/repos", False),
        ("https://api.github.com", "https://api.github.com:8443/repos", False),
        ("https://ghe.example/api/v3", "https://ghe.example/api/v3/repos/a/b", True),
        ("https://ghe.example/api/v3", "https://ghe.example/login", False),
        ("https://ghe.example/api/v3", "https://ghe.example/api/v3x/repos", False),
    ],
)
def test_within_api(base: str, url: str, inside: bool) -> None:
    assert within_api(base, url) is inside


def test_graphql_url() -> None:
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_url("https://ghe.example/api/v3/") == "https://ghe.example/api/graphql"
