"""Create or update the one envspec comment on a pull request.

The seed project's workflows each posted a fresh comment, so a busy PR
collected dozens. Here every stage (plan, deployed, destroyed, failed) edits
the comment whose first line is the instance's marker, and only the first run
creates it. One implementation, used by every workflow through
`envspec comment --post`, instead of a script pasted into each YAML file.
"""

from __future__ import annotations

from typing import Literal

from envspec.github.api import GitHubClient, check_repo

Action = Literal["created", "updated"]


def find_comment(client: GitHubClient, repo: str, pr: int, marker: str) -> int | None:
    """The id of the oldest comment on the PR that starts with `marker`, if any."""
    for item in client.paginate(f"/repos/{check_repo(repo)}/issues/{int(pr)}/comments"):
        body = (item.get("body") or "") if isinstance(item, dict) else ""
        if body.lstrip().startswith(marker):
            return int(item["id"])
    return None


def upsert_comment(client: GitHubClient, repo: str, pr: int, body: str, marker: str) -> tuple[Action, int]:
    """Update the marked comment, or create it; returns what was done and the comment id."""
    if not body.startswith(marker):
        raise ValueError("the comment body must start with its marker, or the next run cannot find it")
    existing = find_comment(client, repo, pr, marker)
    if existing is not None:
        client.patch_json(f"/repos/{check_repo(repo)}/issues/comments/{existing}", {"body": body})
        return "updated", existing
    created = client.post_json(f"/repos/{check_repo(repo)}/issues/{int(pr)}/comments", {"body": body})
    return "created", int(created["id"])
