"""What envspec needs from a pull-request host: PR state for gc and pr-check, and one comment per PR.

`envspec.github.api.GitHubClient` is the one implementation today; another
host (GitLab, Gitea) is one module with a class that has these methods.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Protocol, runtime_checkable


@runtime_checkable
class PullRequestHost(Protocol):
    def pull_request(self, repo: str, number: int) -> Any:
        """An object with `is_open`, `merged` and `head_sha`."""
        ...

    def get_json(self, path_or_url: str, params: Mapping[str, str | int] | None = None) -> Any: ...

    def paginate(self, path: str, params: Mapping[str, str | int] | None = None, *, max_pages: int = 1000) -> Iterator[Any]: ...

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any: ...

    def patch_json(self, path: str, body: Mapping[str, Any]) -> Any: ...
