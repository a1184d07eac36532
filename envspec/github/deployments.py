"""GitHub Deployments for what envspec applies: the PR's "View deployment" button and the environment's history.

A deploy creates one GitHub Deployment for the instance (environment
`<environment>-<N>` for a preview, the instance name for production) at the
commit being deployed, marks it `in_progress`, and finishes it `success` with
the environment URL or `failure` with the link to the run's log. Destroying
the instance marks every one of its deployments `inactive`, so the PR stops
offering a link to a preview that no longer exists.

The deployment's payload records the images it ran (full references, digests
included): `envspec delete-images` reads the production environment's
payloads so that it never deletes an image production runs, even one
promoted from a preview by its digest.

Nothing here knows a site: the environment name is the compiled instance's,
the URL is whichever declared output the caller names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from envspec.github.api import GitHubClient, GitHubError, check_repo

FinalState = Literal["success", "failure"]
STATES = ("in_progress", "success", "failure", "inactive")
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Deployment:
    id: int
    environment: str
    sha: str
    images: tuple[str, ...] = ()


def check_sha(sha: str) -> str:
    """A deployment is of one exact commit: 40 lower-case hex digits, never a branch name."""
    if not _SHA.match(sha or ""):
        from envspec.errors import SpecError

        raise SpecError(f"--sha must be a full commit SHA (40 hex digits), got {sha!r}")
    return sha


def start(
    client: GitHubClient,
    repo: str,
    *,
    environment: str,
    sha: str,
    images: Iterable[str] = (),
    description: str = "",
    transient: bool = False,
    production: bool = False,
    log_url: str | None = None,
    pr: int | None = None,
) -> Deployment:
    """Create the deployment and mark it in_progress.

    `required_contexts: []` and `auto_merge: false`: the workflow already
    decided to deploy this exact commit; GitHub must neither refuse it over
    pending checks nor merge the default branch into it.
    """
    body = {
        "ref": check_sha(sha),
        "environment": environment,
        "auto_merge": False,
        "required_contexts": [],
        "transient_environment": transient,
        "production_environment": production,
        "description": description[:140],
        "payload": {"images": sorted(set(images)), **({"pr_number": int(pr)} if pr is not None else {})},
    }
    created = client.post_json(f"/repos/{check_repo(repo)}/deployments", body)
    deployment = _deployment(created)
    set_status(client, repo, deployment.id, "in_progress", log_url=log_url)
    return deployment


def set_status(
    client: GitHubClient,
    repo: str,
    deployment_id: int,
    state: str,
    *,
    environment_url: str | None = None,
    log_url: str | None = None,
    description: str = "",
) -> None:
    if state not in STATES:
        raise ValueError(f"unknown deployment state {state!r}; expected one of {', '.join(STATES)}")
    body: dict[str, Any] = {"state": state, "description": description[:140]}
    if environment_url:
        body["environment_url"] = environment_url
    if log_url:
        body["log_url"] = log_url
    client.post_json(f"/repos/{check_repo(repo)}/deployments/{int(deployment_id)}/statuses", body)


def latest(client: GitHubClient, repo: str, *, environment: str, sha: str | None = None) -> Deployment | None:
    """The newest deployment of `environment` (at `sha`, if given); GitHub lists newest first."""
    params: dict[str, str | int] = {"environment": environment}
    if sha:
        params["sha"] = check_sha(sha)
    for item in client.paginate(f"/repos/{check_repo(repo)}/deployments", params):
        return _deployment(item)
    return None


def finish(
    client: GitHubClient,
    repo: str,
    *,
    environment: str,
    sha: str,
    state: FinalState,
    deployment_id: int | None = None,
    environment_url: str | None = None,
    log_url: str | None = None,
) -> Deployment:
    """Mark the deployment `start` created (found by environment and commit) success or failure."""
    if deployment_id is not None:
        target = Deployment(int(deployment_id), environment, sha)
    else:
        found = latest(client, repo, environment=environment, sha=sha)
        if found is None:
            raise GitHubError(f"no GitHub deployment of {environment} at {sha} to mark {state}; run with --state in_progress first")
        target = found
    set_status(client, repo, target.id, state,
               environment_url=environment_url if state == "success" else None, log_url=log_url)
    return target


def deactivate(client: GitHubClient, repo: str, *, environment: str, log_url: str | None = None) -> list[int]:
    """Mark every deployment of `environment` inactive (all pages); returns their ids.

    A deployment whose newest status already is `inactive` is left alone, so
    running cleanup twice writes nothing the second time.
    """
    ids = [
        _deployment(item).id
        for item in client.paginate(f"/repos/{check_repo(repo)}/deployments", {"environment": environment})
    ]
    changed: list[int] = []
    for deployment_id in ids:
        newest = next(iter(client.paginate(f"/repos/{check_repo(repo)}/deployments/{deployment_id}/statuses")), None)
        if isinstance(newest, dict) and newest.get("state") == "inactive":
            continue
        set_status(client, repo, deployment_id, "inactive", log_url=log_url)
        changed.append(deployment_id)
    return changed


def deployed_images(client: GitHubClient, repo: str, *, environment: str) -> set[str]:
    """Every image any deployment of `environment` recorded in its payload (all pages)."""
    images: set[str] = set()
    for item in client.paginate(f"/repos/{check_repo(repo)}/deployments", {"environment": environment}):
        payload = item.get("payload") if isinstance(item, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("images"), list):
            images.update(str(i) for i in payload["images"] if isinstance(i, str))
    return images


def _deployment(data: Any) -> Deployment:
    try:
        payload = data.get("payload") or {}
        images = tuple(payload.get("images") or ()) if isinstance(payload, dict) else ()
        return Deployment(int(data["id"]), str(data.get("environment") or ""), str(data.get("sha") or ""), images)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise GitHubError("GitHub API returned a deployment without an id") from None
