"""Create or update the one envspec comment on a pull request.

The seed project's workflows each posted a fresh comment, so a busy PR
collected dozens. Here every stage (plan, deployed, destroyed, failed) edits
the comment whose first line is the instance's marker, and only the first run
creates it. One implementation, used by every workflow through
`envspec comment --post`, instead of a script pasted into each YAML file.

The marker is plain text anyone can type, so it alone must not decide which
comment gets rewritten: a comment someone else wrote with the marker on top
would otherwise be overwritten with envspec's output under their name's
history. Only comments written by the token's own identity are candidates,
and that identity is asked of GitHub, never assumed:

* a personal access token: `GET /user` answers with its login and id;
* an app installation token (the workflow's GITHUB_TOKEN, or a dedicated
  GitHub App's): `GET /user` is refused with 403 "Resource not accessible by
  integration", and GraphQL's `viewer` names the app's bot account
  (`github-actions[bot]`, `<app>[bot]`). Taking every 403 to mean
  `github-actions[bot]` would let any workflow's GITHUB_TOKEN plant a marker
  comment that a dedicated app's run later edits.

Comments match on the account id when GitHub gives one (logins can be renamed
and reused), else on login and type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from envspec.github.api import GitHubClient, GitHubError, check_repo

Action = Literal["created", "updated"]

GITHUB_ACTIONS_BOT = "github-actions[bot]"


@dataclass(frozen=True)
class Author:
    """Who writes comments with the client's token."""

    login: str
    type: str = "User"  # GitHub's user.type: "User", "Bot" or "Organization"
    id: int | None = field(default=None, compare=False)  # the account's database id, when GitHub said it

    def wrote(self, comment: Any) -> bool:
        user = comment.get("user") if isinstance(comment, dict) else None
        if not isinstance(user, dict):
            return False
        if self.id is not None and user.get("id") is not None:
            return user.get("id") == self.id
        login = str(user.get("login") or "")
        # Logins are case-insensitive on GitHub; a Bot must also say it is one.
        if login.lower() != self.login.lower():
            return False
        return self.type != "Bot" or user.get("type") == "Bot"


_VIEWER = "query { viewer { login databaseId } }"


def token_author(client: GitHubClient) -> Author:
    """The identity behind the client's token (see module doc)."""
    try:
        user = client.get_json("/user")
    except GitHubError as exc:
        if exc.status != 403:
            raise
        return _app_author(client)
    login = user.get("login") if isinstance(user, dict) else None
    if not isinstance(login, str) or not login:
        raise GitHubError("GitHub API GET /user returned no login; cannot tell which comments are ours")
    return Author(login, str(user.get("type") or "User"), _int_or_none(user.get("id")))


def _app_author(client: GitHubClient) -> Author:
    """An installation token's bot account, from GraphQL `viewer` (REST has no endpoint an installation may ask)."""
    try:
        viewer = (client.graphql(_VIEWER) or {}).get("viewer")
    except GitHubError as exc:
        raise GitHubError(f"cannot tell which comments are ours: GET /user was refused and {exc}") from None
    login = viewer.get("login") if isinstance(viewer, dict) else None
    if not isinstance(login, str) or not login:
        raise GitHubError("GitHub GraphQL viewer returned no login; cannot tell which comments are ours")
    kind = "Bot" if login.endswith("[bot]") else "User"
    return Author(login, kind, _int_or_none(viewer.get("databaseId")))


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
