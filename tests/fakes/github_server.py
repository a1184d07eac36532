"""A fake GitHub REST API for tests: pull requests and their comments.

Serves what envspec's urllib client calls, over real HTTP on 127.0.0.1:
- ``GET /repos/{owner}/{repo}/pulls?state=open|closed|all&per_page=N&page=P``
  with a ``Link`` header (``rel="next"``/``rel="last"``, absolute URLs, like GitHub);
- ``GET /repos/{owner}/{repo}/pulls/{number}`` (404 ``{"message": "Not Found"}`` when absent);
- ``GET|POST /repos/{owner}/{repo}/issues/{number}/comments`` (GET paginated like the pulls list)
  and ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``; every comment carries
  ``user: {login, type}`` like GitHub's;
- ``GET /user``: the token's identity. By default the token acts like a
  workflow's GITHUB_TOKEN: ``/user`` answers 403 "Resource not accessible by
  integration" and comments it writes are by ``github-actions[bot]`` (type Bot).
  Set ``user`` (e.g. ``{"login": "deploy-bot", "type": "User"}``) to act like a
  personal access token;
- ``POST /graphql`` with the ``viewer { login databaseId }`` query: the
  installation's bot account (``viewer``, default ``github-actions[bot]``; set
  it to e.g. ``{"login": "envspec-app[bot]", "type": "Bot", "id": 7}`` to act
  like a dedicated GitHub App's token). Set ``link_base`` to make ``Link``
  headers point at another origin (a hostile or misconfigured server).

It checks ``Authorization: Bearer <token>`` when a token is configured (401
``Bad credentials``), records every request, and fails the next N matching
requests on demand. It does not fake anything else of GitHub.

Deployments and packages (see the helpers at the end of the class):
- ``GET|POST /repos/{owner}/{repo}/deployments`` (GET filtered by
  ``environment``/``sha``/``ref``, newest first, paginated) and
  ``GET|POST /repos/{owner}/{repo}/deployments/{id}/statuses``: states are
  checked like GitHub's (422 otherwise), and a ``success`` status with
  ``auto_inactive`` (the default) marks the environment's earlier successful,
  non-transient, non-production deployments ``inactive``, as GitHub does;
- ``GET /users/{name}``: ``type`` ``Organization`` or ``User`` (owners added
  with ``add_package_version``; 404 otherwise);
- ``GET /orgs/{org}/packages/container/{package}/versions`` (and
  ``/users/{user}/...``), newest first, paginated with ``Link``, and
  ``DELETE .../versions/{id}`` (204). The package name is URL-encoded in the
  path, as GitHub expects.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

_PULLS = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls$")
_PULL = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/(\d+)$")
_COMMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
_COMMENT = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$")
_DEPLOYMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/deployments$")
_DEPLOYMENT_STATUSES = re.compile(r"^/repos/([^/]+)/([^/]+)/deployments/(\d+)/statuses$")
_OWNER = re.compile(r"^/users/([^/]+)$")
_VERSIONS = re.compile(r"^/(orgs|users)/([^/]+)/packages/container/([^/]+)/versions$")
_VERSION = re.compile(r"^/(orgs|users)/([^/]+)/packages/container/([^/]+)/versions/(\d+)$")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any = None


@dataclass
class _Fault:
    path_regex: str
    status: int
    times: int
    message: str


ACTIONS_BOT = {"login": "github-actions[bot]", "type": "Bot", "id": 41898282}
HUMAN = {"login": "octocat", "type": "User", "id": 583231}


@dataclass
class FakeGitHub:
    token: str | None = "test-token"
    user: dict[str, Any] | None = None  # None: an installation token (GITHUB_TOKEN); else what GET /user returns
    viewer: dict[str, Any] | None = None  # an installation token's bot account (None: github-actions[bot])
    link_base: str | None = None  # origin written into Link headers (None: this server's)
    pulls: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {id, repo, issue, body}
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> GitHub's deployment + "statuses"
    owners: dict[str, str] = field(default_factory=dict)  # login -> "Organization" | "User"
    versions: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # (owner, package) -> newest first
    _faults: list[_Fault] = field(default_factory=list)
    redirects: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (status, Location)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_pull(self, repo: str, number: int, *, state: str = "open", head_sha: str | None = None, merged: bool = False) -> None:
        sha = head_sha or f"{number:040x}"
        self.pulls[(repo, number)] = {
            "number": number,
            "state": state,
            "title": f"PR {number}",
            "head": {"sha": sha, "ref": f"branch-{number}"},
            "merged_at": "2026-01-01T00:00:00Z" if merged else None,
        }

    def add_fault(self, *, path_regex: str = ".*", status: int = 500, times: int = 1, message: str = "Server Error") -> None:
        self._faults.append(_Fault(path_regex, status, times, message))

    def add_redirect(self, path: str, location: str, *, status: int = 301) -> None:
        """Answer `path` with a redirect to `location` (GitHub redirects renamed repositories this way)."""
        self.redirects[path] = (status, location)

    @property
    def identity(self) -> dict[str, Any]:
        """Who the token writes comments as."""
        if self.user is not None:
            return dict(self.user)
        return dict(self.viewer) if self.viewer is not None else dict(ACTIONS_BOT)

    def add_comment(self, repo: str, issue: int, body: str, *, author: dict[str, Any] | None = None) -> int:
        """A comment written by `author` (default: a person, octocat)."""
        comment_id = 1000 + len(self.comments)
        self.comments[comment_id] = {"id": comment_id, "repo": repo, "issue": issue, "body": body,
                                     "user": dict(author or HUMAN)}
        return comment_id

    def comment(self, comment_id: int) -> dict[str, Any]:
        return self.comments[comment_id]

    def comments_on(self, repo: str, issue: int) -> list[str]:
        return [c["body"] for _, c in sorted(self.comments.items()) if c["repo"] == repo and c["issue"] == issue]

    def count(self, path_contains: str = "", method: str | None = None) -> int:
        return sum(1 for r in self.requests if path_contains in r.path and method in (None, r.method))

    def start(self) -> "FakeGitHub":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:  # noqa: N802
                fake._handle(self, "PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                fake._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeGitHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling -------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(parts.query)
        auth = h.headers.get("Authorization")
        length = int(h.headers.get("Content-Length") or 0)
        try:
            body = json.loads(h.rfile.read(length)) if length else None
        except ValueError:
            return self._send(h, 400, {"message": "Problems parsing JSON"})
        self.requests.append(Request(method, parts.path, query, auth, body))
        for fault in self._faults:
            if fault.times > 0 and re.search(fault.path_regex, parts.path):
                fault.times -= 1
                return self._send(h, fault.status, {"message": fault.message})
        if parts.path in self.redirects:
            status, location = self.redirects[parts.path]
            return self._send(h, status, {"message": "Moved Permanently", "url": location}, {"Location": location})
        if self.token is not None and auth != f"Bearer {self.token}":
            return self._send(h, 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if method == "POST" and parts.path == "/graphql":
            return self._graphql(h, body)
        if method != "GET":
            return self._write(h, method, parts.path, body)
        if parts.path == "/user":
            if self.user is None:
                return self._send(h, 403, {
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                })
            return self._send(h, 200, dict(self.user))
        if match := _COMMENTS.match(parts.path):
            repo, issue = f"{match.group(1)}/{match.group(2)}", int(match.group(3))
            items = [{"id": c["id"], "body": c["body"], "user": dict(c["user"])} for _, c in sorted(self.comments.items())
                     if c["repo"] == repo and c["issue"] == issue]
            return self._paged(h, items, parts.path, query)
        if match := _PULL.match(parts.path):
            repo, number = f"{match.group(1)}/{match.group(2)}", int(match.group(3))
            pull = self.pulls.get((repo, number))
            if pull is None:
                return self._send(h, 404, {"message": "Not Found"})
            return self._send(h, 200, pull)
        if match := _PULLS.match(parts.path):
            return self._list(h, f"{match.group(1)}/{match.group(2)}", parts.path, query)
        return self._get_more(h, parts.path, query)

    def _write(self, h: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        if self._write_more(h, method, path, body):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return self._send(h, 422, {"message": "Invalid request: body is required"})
        if method == "POST" and (match := _COMMENTS.match(path)):
            comment_id = self.add_comment(f"{match.group(1)}/{match.group(2)}", int(match.group(3)), body["body"],
                                          author=self.identity)
            return self._send(h, 201, {"id": comment_id, "body": body["body"], "user": self.identity})
        if method == "PATCH" and (match := _COMMENT.match(path)):
            comment = self.comments.get(int(match.group(3)))
            if comment is None or comment["repo"] != f"{match.group(1)}/{match.group(2)}":
                return self._send(h, 404, {"message": "Not Found"})
            # Like GitHub, a token with write access may edit anyone's comment: only the client can prevent a takeover.
            comment["body"] = body["body"]
            return self._send(h, 200, {"id": comment["id"], "body": comment["body"], "user": comment["user"]})
        return self._send(h, 404, {"message": "Not Found"})

    def _graphql(self, h: BaseHTTPRequestHandler, body: Any) -> None:
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or "viewer" not in query:
            return self._send(h, 200, {"errors": [{"message": "this fake answers only the viewer query"}]})
        who = self.identity
        return self._send(h, 200, {"data": {"viewer": {"login": who["login"], "databaseId": who.get("id")}}})

    def _list(self, h: BaseHTTPRequestHandler, repo: str, path: str, query: dict[str, list[str]]) -> None:
        state = query.get("state", ["open"])[0]
        items = [p for (r, _), p in sorted(self.pulls.items(), key=lambda kv: kv[0][1]) if r == repo]
        if state != "all":
            items = [p for p in items if p["state"] == state]
        self._paged(h, items, path, query)

    def _paged(self, h: BaseHTTPRequestHandler, items: list[Any], path: str, query: dict[str, list[str]]) -> None:
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        base = {k: v[0] for k, v in query.items() if k != "page"}
        origin = self.link_base or self.url
        if page < last:
            links.append(f'<{origin}{path}?{urllib.parse.urlencode({**base, "page": page + 1})}>; rel="next"')
            links.append(f'<{origin}{path}?{urllib.parse.urlencode({**base, "page": last})}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        self._send(h, 200, chunk, headers)

    # -- deployments and packages -----------------------------------------

    def add_package_version(self, owner: str, package: str, tags: list[str], *, digest: str | None = None,
                            owner_type: str = "Organization") -> int:
        """A container image version (newest first, like GitHub lists them); returns its id."""
        self.owners.setdefault(owner, owner_type)
        version_id = 5000 + sum(len(v) for v in self.versions.values()) + len(self._deleted_ids)
        name = digest or f"sha256:{version_id:064x}"
        self.versions.setdefault((owner, package), []).insert(0, {
            "id": version_id, "name": name, "package_html_url": f"https://github.com/{owner}/{package}",
            "metadata": {"package_type": "container", "container": {"tags": list(tags)}},
        })
        return version_id

    def tags_of(self, owner: str, package: str) -> list[list[str]]:
        """Each remaining version's tags, newest first."""
        return [list(v["metadata"]["container"]["tags"]) for v in self.versions.get((owner, package), [])]

    @property
    def _deleted_ids(self) -> list[int]:
        return [int(r.path.rsplit("/", 1)[1]) for r in self.requests if r.method == "DELETE" and _VERSION.match(r.path)]

    def deployments_of(self, repo: str, environment: str) -> list[dict[str, Any]]:
        """The environment's deployments, oldest first, each with its statuses (oldest first)."""
        return [d for _, d in sorted(self.deployments.items()) if d["repo"] == repo and d["environment"] == environment]

    def states_of(self, deployment_id: int) -> list[str]:
        return [s["state"] for s in self.deployments[deployment_id]["statuses"]]

    def _get_more(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        if match := _DEPLOYMENTS.match(path):
            repo = f"{match.group(1)}/{match.group(2)}"
            items = [d for d in reversed(self.deployments_of_repo(repo))
                     if all(query.get(key, [d[key]])[0] == d[key] for key in ("environment", "sha", "ref"))]
            return self._paged(h, [self._public(d) for d in items], path, query)
        if match := _DEPLOYMENT_STATUSES.match(path):
            deployment = self.deployments.get(int(match.group(3)))
            if deployment is None or deployment["repo"] != f"{match.group(1)}/{match.group(2)}":
                return self._send(h, 404, {"message": "Not Found"})
            return self._paged(h, list(reversed(deployment["statuses"])), path, query)
        if match := _OWNER.match(path):
            login = urllib.parse.unquote(match.group(1))
            if login not in self.owners:
                return self._send(h, 404, {"message": "Not Found"})
            return self._send(h, 200, {"login": login, "type": self.owners[login]})
        if match := _VERSIONS.match(path):
            found = self._package(match.group(1), match.group(2), match.group(3))
            if found is None:
                return self._send(h, 404, {"message": "Package not found."})
            return self._paged(h, [dict(v) for v in found], path, query)
        return self._send(h, 404, {"message": "Not Found"})

    def deployments_of_repo(self, repo: str) -> list[dict[str, Any]]:
        return [d for _, d in sorted(self.deployments.items()) if d["repo"] == repo]

    def _package(self, scope: str, owner: str, encoded: str) -> list[dict[str, Any]] | None:
        owner = urllib.parse.unquote(owner)
        kind = self.owners.get(owner)
        if kind is None or (scope == "orgs") != (kind == "Organization"):
            return None
        return self.versions.get((owner, urllib.parse.unquote(encoded)))

    @staticmethod
    def _public(deployment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in deployment.items() if k not in ("statuses", "repo")}

    def _write_more(self, h: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> bool:
        """Deployments, their statuses and package version deletes; False when the path is none of those."""
        if method == "DELETE" and (match := _VERSION.match(path)):
            found = self._package(match.group(1), match.group(2), match.group(3))
            version_id = int(match.group(4))
            if found is None or not any(v["id"] == version_id for v in found):
                self._send(h, 404, {"message": "Package version not found."})
                return True
            found[:] = [v for v in found if v["id"] != version_id]
            self._send(h, 204, None)
            return True
        if method == "POST" and (match := _DEPLOYMENTS.match(path)):
            repo = f"{match.group(1)}/{match.group(2)}"
            if not isinstance(body, dict) or not isinstance(body.get("ref"), str) or not body["ref"]:
                self._send(h, 422, {"message": "Invalid request: ref is required"})
                return True
            deployment_id = 7000 + len(self.deployments)
            self.deployments[deployment_id] = {
                "id": deployment_id, "repo": repo, "ref": body["ref"], "sha": body["ref"],
                "environment": str(body.get("environment") or "production"),
                "description": body.get("description"), "payload": body.get("payload") or {},
                "transient_environment": bool(body.get("transient_environment", False)),
                "production_environment": bool(body.get("production_environment", body.get("environment") == "production")),
                "creator": self.identity, "statuses": [],
            }
            self._send(h, 201, self._public(self.deployments[deployment_id]))
            return True
        if method == "POST" and (match := _DEPLOYMENT_STATUSES.match(path)):
            deployment = self.deployments.get(int(match.group(3)))
            if deployment is None or deployment["repo"] != f"{match.group(1)}/{match.group(2)}":
                self._send(h, 404, {"message": "Not Found"})
                return True
            state = body.get("state") if isinstance(body, dict) else None
            if state not in DEPLOYMENT_STATES:
                self._send(h, 422, {"message": f"Invalid request: state {state!r} is not one of {', '.join(DEPLOYMENT_STATES)}"})
                return True
            status = {"id": 9000 + sum(len(d["statuses"]) for d in self.deployments.values()), "state": state,
                      "environment_url": body.get("environment_url") or "", "log_url": body.get("log_url") or "",
                      "description": body.get("description") or "", "creator": self.identity}
            deployment["statuses"].append(status)
            if state == "success" and body.get("auto_inactive", True):
                for other in self.deployments_of(deployment["repo"], deployment["environment"]):
                    if (other["id"] < deployment["id"] and not other["transient_environment"]
                            and not other["production_environment"]
                            and other["statuses"] and other["statuses"][-1]["state"] == "success"):
                        other["statuses"].append({**status, "id": status["id"] + 100000 + other["id"], "state": "inactive"})
            self._send(h, 201, status)
            return True
        return False

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if status != 204 else b""
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def fake_github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A started fake, with GITHUB_API_URL, GITHUB_TOKEN and GITHUB_REPOSITORY pointing at it."""
    with FakeGitHub() as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", fake.token or "")
        monkeypatch.setenv("GITHUB_REPOSITORY", "aphiria/aphiria.com")
        yield fake
