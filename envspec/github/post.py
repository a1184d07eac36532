"""Create or update the one envspec comment on a pull request.

The seed project's workflows each posted a fresh comment, so a busy PR
collected dozens. Here every stage (plan, deployed, destroyed, failed) edits
the comment whose first line is the instance's marker, and only the first run
creates it. One implementation, used by every workflow through
`envspec comment --post`, instead of a script pasted into each YAML file.

The marker is plain text anyone can type, so it alone must not decide which
comment gets rewritten: a comment someone else wrote with the marker on top
would otherwise be overwritten with envspec's output under their name's
history. Only comments written by the token's own identity are candidates:

* a personal access token: `GET /user` answers with its login;
* the workflow's GITHUB_TOKEN (an app installation token): `GET /user` is
  refused with 403 "Resource not accessible by integration", and comments it
  writes are authored by `github-actions[bot]`, user type "Bot".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from envspec.github.api import GitHubClient, GitHubError, check_repo

Action = Literal["created", "updated"]

GITHUB_ACTIONS_BOT = "github-actions[bot]"


@dataclass(frozen=True)
class Author:
    """Who writes comments with the client's token."""

    login: str
    type: str = "User"  # GitHub's user.type: "User", "Bot" or "Organization"

    def wrote(self, comment: Any) -> bool:
        user = comment.get("user") if isinstance(comment, dict) else None
        if not isinstance(user, dict):
            return False
        login = str(user.get("login") or "")
        # Logins are case-insensitive on GitHub; a Bot must also say it is one.
        if login.lower() != self.login.lower():
            return False
        return self.type != "Bot" or user.get("type") == "Bot"


def token_author(client: GitHubClient) -> Author:
    """The identity behind the client's token (see module doc)."""
    try:
        user = client.get_json("/user")
    except GitHubError as exc:
        if exc.status == 403:
            return Author(GITHUB_ACTIONS_BOT, "Bot")
        raise
    login = user.get("login") if isinstance(user, dict) else None
    if not isinstance(login, str) or not login:
        raise GitHubError("GitHub API GET /user returned no login; cannot tell which comments are ours")
    return Author(login, str(user.get("type") or "User"))


def find_comment(client: GitHubClient, repo: str, pr: int, marker: str, author: Author) -> int | None:
    """The id of the oldest comment on the PR that `author` wrote and that starts with `marker`, if any."""
    for item in client.paginate(f"/repos/{check_repo(repo)}/issues/{int(pr)}/comments"):
        body = (item.get("body") or "") if isinstance(item, dict) else ""
        if body.lstrip().startswith(marker) and author.wrote(item):
            return int(item["id"])
    return None


def upsert_comment(
    client: GitHubClient, repo: str, pr: int, body: str, marker: str, *, author: Author | None = None
) -> tuple[Action, int]:
    """Update our marked comment, or create it; returns what was done and the comment id.

    `author` defaults to the token's identity (`token_author`); pass it when
    the token belongs to another GitHub App, whose comments are `<app>[bot]`.
    """
    if not body.startswith(marker):
        raise ValueError("the comment body must start with its marker, or the next run cannot find it")
    existing = find_comment(client, repo, pr, marker, author or token_author(client))
    if existing is not None:
        client.patch_json(f"/repos/{check_repo(repo)}/issues/comments/{existing}", {"body": body})
        return "updated", existing
    created = client.post_json(f"/repos/{check_repo(repo)}/issues/{int(pr)}/comments", {"body": body})
    return "created", int(created["id"])
