"""A very small GitHub REST client on urllib.

envspec asks GitHub two questions: is this PR still open, and at which head
commit (the deploy guard); and which PRs are closed (preview garbage
collection). That does not justify a dependency, so this is urllib with the
three things GitHub needs: a bearer token, the API version header, and
pagination through the `Link` header. The token is sent and never shown: it is
not part of any message, repr or exception, and it is sent only to the API's
own origin (a `Link` or a redirect elsewhere is refused, not followed:
urllib would otherwise copy the Authorization header to the redirect's host).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from envspec.errors import OperationError, SpecError

DEFAULT_API_URL = "https://api.github.com"
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(OperationError):
    """A GitHub API call failed; carries the HTTP status (0 when the server was not reached)."""

    def __init__(self, message: str, *, status: int = 0):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PullRequest:
    number: int
    state: str  # "open" or "closed"
    head_sha: str
    merged: bool = False

    @property
    def is_open(self) -> bool:
        return self.state == "open"


@dataclass
class GitHubClient:
    """Calls api.github.com (or `GITHUB_API_URL`, e.g. GitHub Enterprise or a test fake)."""

    base_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    timeout: float = 15.0
    per_page: int = 100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, timeout: float = 15.0) -> "GitHubClient":
        env = os.environ if environ is None else environ
        base = env.get("GITHUB_API_URL") or DEFAULT_API_URL
        return cls(base_url=base.rstrip("/"), token=env.get("GITHUB_TOKEN") or None, timeout=timeout)

    def get_json(self, path_or_url: str, params: Mapping[str, str | int] | None = None) -> Any:
        data, _ = self._get(self._url(path_or_url, params))
        return data

    def paginate(self, path: str, params: Mapping[str, str | int] | None = None, *, max_pages: int = 1000) -> Iterator[Any]:
        """Yield the items of a list endpoint, following `Link: <...>; rel="next"` until the end.

        A next link is followed only within the API's own origin and path (the
        token goes with every request, so a Link to another host would hand it
        over), and a list longer than `max_pages` raises instead of being cut
        short: a silently truncated list of closed PRs or comments reads as
        "not there".
        """
        query = {"per_page": self.per_page, **(params or {})}
        url: str | None = self._url(path, query)
        pages = 0
        while url is not None:
            if pages >= max_pages:
                raise GitHubError(
                    f"GitHub API GET {_path_of(self._url(path, None))}: more than {max_pages} pages; refusing to truncate the list"
                )
            data, headers = self._get(url)
            pages += 1
            if not isinstance(data, list):
                raise GitHubError(f"GitHub API GET {_path_of(url)}: expected a list, got {type(data).__name__}")
            yield from data
            url = next_link(headers.get("Link"))

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        """POST a GraphQL query; returns `data`, raises on `errors` (GitHub answers those with 200)."""
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = dict(variables)
        data, _ = self._send("POST", graphql_url(self.base_url), body)
        if not isinstance(data, dict) or data.get("errors") or not isinstance(data.get("data"), dict):
            errors = data.get("errors") if isinstance(data, dict) else None
            first = errors[0].get("message") if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
            raise GitHubError(f"GitHub GraphQL query failed: {first or 'no data in the answer'}")
        return data["data"]

    def pull_request(self, repo: str, number: int) -> PullRequest:
        data = self.get_json(f"/repos/{check_repo(repo)}/pulls/{int(number)}")
        return _pull(data)

    def closed_pull_numbers(self, repo: str) -> set[int]:
        """Every closed PR number of `repo` (one request per 100 PRs)."""
        return {
            _pull(item).number
            for item in self.paginate(f"/repos/{check_repo(repo)}/pulls", {"state": "closed", "sort": "created"})
        }

    def _url(self, path_or_url: str, params: Mapping[str, str | int] | None) -> str:
        if "://" in path_or_url:
            if not within_api(self.base_url, path_or_url):
                raise GitHubError(
                    f"GitHub API: refusing to send the token to {_origin_of(path_or_url)}, outside {_origin_of(self.base_url)}"
                )
            url = path_or_url
        else:
            url = f"{self.base_url.rstrip('/')}/{path_or_url.lstrip('/')}"
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return url

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        data, _ = self._send("POST", self._url(path, None), body)
        return data

    def patch_json(self, path: str, body: Mapping[str, Any]) -> Any:
        data, _ = self._send("PATCH", self._url(path, None), body)
        return data

    def _get(self, url: str) -> tuple[Any, Mapping[str, str]]:
        if not within_api(self.base_url, url):
            raise GitHubError(f"GitHub API: refusing to follow a link to {_origin_of(url)}, outside {_origin_of(self.base_url)}")
        return self._send("GET", url, None)

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> tuple[Any, Mapping[str, str]]:
        payload = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=payload, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "envspec")
        if payload is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        path = _path_of(url)
        try:
            with urllib.request.build_opener(_ApiRedirects(self.base_url)).open(request, timeout=self.timeout) as response:
                raw = response.read()
                headers = {k: v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            raise GitHubError(
                f"GitHub API {method} {path} failed: {exc.code} {_error_message(exc)}", status=exc.code
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(f"GitHub API {method} {path} failed: cannot reach {self.base_url}: {reason}") from None
        try:
            return json.loads(raw or b"null"), headers
        except ValueError:
            raise GitHubError(f"GitHub API {method} {path} returned a body that is not JSON") from None

    def delete(self, path: str) -> None:
        """DELETE a resource (GitHub answers 204 No Content)."""
        self._send("DELETE", self._url(path, None), None)


class _ApiRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects within the API only: urllib copies every header, the token too, to the new URL."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not within_api(self.base_url, newurl):
            raise GitHubError(
                f"GitHub API {req.get_method()} {_path_of(req.full_url)}: refusing to follow a {code} redirect to "
                f"{_origin_of(newurl)}, outside {_origin_of(self.base_url)} (it would receive the token)",
                status=code,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def next_link(header: str | None) -> str | None:
    """The `rel="next"` URL of a Link header, if any."""
    if not header:
        return None
    for part in header.split(","):
        match = _LINK_NEXT.search(part)
        if match:
            return match.group(1)
    return None


def within_api(base_url: str, url: str) -> bool:
    """Whether `url` is on the API's origin (scheme, host, port) and under its path (GHES: /api/v3)."""
    base, other = urllib.parse.urlsplit(base_url), urllib.parse.urlsplit(url)
    if (base.scheme.lower(), base.netloc.lower()) != (other.scheme.lower(), other.netloc.lower()):
        return False
    prefix = base.path.rstrip("/")
    return not prefix or other.path == prefix or other.path.startswith(prefix + "/")


def graphql_url(base_url: str) -> str:
    """GitHub.com serves GraphQL at /graphql beside REST; GitHub Enterprise Server at /api/graphql beside /api/v3."""
    base = base_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def check_repo(repo: str) -> str:
    if not _REPO.match(repo or ""):
        raise SpecError(f"repository must look like owner/name, got {repo!r}")
    return repo


def resolve_repo(repo: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--repo, else GITHUB_REPOSITORY (set in every Actions run)."""
    env = os.environ if environ is None else environ
    value = repo or env.get("GITHUB_REPOSITORY")
    if not value:
        raise SpecError("no repository: pass --repo owner/name or set GITHUB_REPOSITORY")
    return check_repo(value)


def _pull(data: Any) -> PullRequest:
    try:
        return PullRequest(
            number=int(data["number"]),
            state=str(data["state"]),
            head_sha=str((data.get("head") or {}).get("sha", "")),
            merged=bool(data.get("merged") or data.get("merged_at")),
        )
    except (KeyError, TypeError, ValueError):
        raise GitHubError("GitHub API returned a pull request without number/state") from None


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read() or b"{}")
        message = data.get("message") if isinstance(data, dict) else None
    except (ValueError, OSError):
        message = None
    return str(message or exc.reason or "error")


def _origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path_of(url: str) -> str:
    """The path and query of a URL: enough to say which call failed, without the host."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
