"""The last check before a preview deploy: is the PR still open, and still at this commit?

A deploy job can wait minutes for an approval while the PR is closed (and its
cleanup already ran) or a newer commit is pushed. The concurrency group orders
runs; this check stops a stale one from recreating what cleanup removed or
rolling a preview back to an older commit. The deploy workflow runs it right
before `envspec apply`.
"""

from __future__ import annotations

import re

from envspec.errors import SpecError
from envspec.github.api import PullRequest
from envspec.github.provider import PullRequestHost

_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")


def check_pull_request(client: PullRequestHost, repo: str, number: int, head_sha: str) -> PullRequest:
    """Return the PR when it is open with head `head_sha`; raise SpecError (exit 2) otherwise.

    A short SHA (7+ hex digits) matches as a prefix, for people running it by hand.
    """
    if not _SHA.match(head_sha):
        raise SpecError(f"--head-sha must be 7 to 40 hex digits, got {head_sha!r}")
    pr = client.pull_request(repo, number)
    if not pr.is_open:
        how = " (merged)" if pr.merged else ""
        raise SpecError(f"PR #{number} is closed{how}; refusing to deploy")
    if not pr.head_sha.lower().startswith(head_sha.lower()):
        raise SpecError(
            f"PR #{number} head moved from {head_sha} to {pr.head_sha}; refusing to deploy an outdated commit"
        )
    return pr
