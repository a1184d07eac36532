"""Every call envspec makes to the DigitalOcean API goes through this module.

DNS records are read, updated and deleted with python-digitalocean's `Domain`
and `Record` objects; the Kubernetes endpoints, which python-digitalocean does
not have, are plain HTTP on the same session. That session is ours
(`_ApiSession`), handed to each python-digitalocean object, so that:

* 429 and 5xx answers are retried by `envspec.retry.RetryPolicy`, the same
  policy the Kubernetes side uses (jittered backoff that honours
  `Retry-After`, or DigitalOcean's `Ratelimit-Reset`; the sleep is
  injectable, so tests don't wait);
* an error answer becomes a `DigitalOceanAPIError` carrying the HTTP status
  and DigitalOcean's own message, before python-digitalocean can turn it into
  an `IndexError` (error bodies without both `id` and `message`) or a
  status-less `NotFoundError`. Whatever python-digitalocean still raises is
  wrapped by `_call`.

Two python-digitalocean quirks shape the code (see its `baseapi.py`):

* It sends POST with the module-level `requests.post`, not the object's
  session, so neither our retries nor our error handling would see it.
  Creating a record is therefore a POST on our session, with the same body
  `Record.create` would send.
* Its `end_point` argument is not passed on to the `Record`s that
  `Domain.get_records()` returns; those read `DIGITALOCEAN_END_POINT`. This
  module reads the same variable and passes the value to every object it
  builds, so the two can never disagree.

The token comes from `DIGITALOCEAN_TOKEN`. It is kept out of reprs and
scrubbed from every message this module produces.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import urljoin, urlsplit

import digitalocean
import requests
from digitalocean import baseapi

from envspec.errors import OperationError, Problem, SpecError
from envspec.retry import RetryPolicy, parse_retry_after

__all__ = ["DigitalOceanAPIError", "DigitalOceanClient", "DnsRecord", "RetryPolicy", "default_policy",
           "retry_after_seconds"]

TOKEN_ENV = "DIGITALOCEAN_TOKEN"
END_POINT_ENV = "DIGITALOCEAN_END_POINT"
DEFAULT_END_POINT = "https://api.digitalocean.com/v2/"

T = TypeVar("T")

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class DigitalOceanAPIError(OperationError):
    """A DigitalOcean API call failed; `status` is the HTTP status (None when no answer came)."""

    def __init__(self, message: str, *, status: int | None = None, error_id: str | None = None):
        self.status = status
        self.error_id = error_id
        super().__init__([Problem(message)])


# DigitalOcean's rate limit resets per minute and per hour, so it is worth waiting longer than for a kube API.
DO_RETRY: dict[str, Any] = {"attempts": 5, "base_delay": 1.0, "max_delay": 30.0, "max_retry_after": 300.0}
REQUEST_TIMEOUT = 60.0  # seconds per HTTP request


def default_policy(sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
    """How often and how patiently DigitalOcean calls retry 429, 5xx and connection failures."""
    return RetryPolicy(**DO_RETRY, sleep=sleep)


@dataclass(frozen=True)
class DnsRecord:
    """A record as DigitalOcean holds it; `name` is relative to the domain (`@` for the apex)."""

    id: int
    type: str
    name: str
    data: str
    ttl: int


class _Token:
    """Holds the API token so that no repr, log line or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


def retry_after_seconds(response: requests.Response, *, now: Callable[[], float] = time.time) -> float | None:
    """The wait the server asked for: `Retry-After` (seconds or HTTP date), else DigitalOcean's `Ratelimit-Reset`."""
    hinted = parse_retry_after(response.headers.get("Retry-After"), now=now)
    if hinted is not None:
        return hinted
    reset = response.headers.get("Ratelimit-Reset")
    if response.status_code == 429 and reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now())
    return None


def _error_body(response: requests.Response) -> tuple[str | None, str]:
    """DigitalOcean's `id` and `message`, or a short description of a body that isn't theirs."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error_id = body.get("id") if isinstance(body.get("id"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else None
        if message:
            return error_id, message
        if error_id:
            return error_id, error_id
    reason = response.reason or "no reason given"
    return None, f"{reason} (the body was not a DigitalOcean error message)"


class _RetryableAnswer(Exception):
    """An answer worth repeating the request for (429, or 5xx to an idempotent method)."""

    def __init__(self, response: requests.Response):
        super().__init__(response.status_code)
        self.response = response


class _NoAnswer(Exception):
    """A connection failure or timeout on an idempotent request."""

    def __init__(self, cause: BaseException):
        super().__init__(type(cause).__name__)
        self.cause = cause


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableAnswer, _NoAnswer))


def _hint(exc: BaseException) -> float | None:
    return retry_after_seconds(exc.response) if isinstance(exc, _RetryableAnswer) else None


class _ApiSession(requests.Session):
    """The one HTTP session for DigitalOcean: retries, then raises `DigitalOceanAPIError` on any error answer."""

    def __init__(self, token: _Token, policy: RetryPolicy, request_timeout: float):
        super().__init__()
        self._token = token
        self._policy = dataclasses.replace(policy, transient=_is_retryable, hint=_hint)
        self._request_timeout = request_timeout
        self.headers["Authorization"] = f"Bearer {token.reveal()}"
        self.headers["Accept"] = "application/json"

    def __repr__(self) -> str:
        return "<DigitalOcean session>"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        method = (method.decode() if isinstance(method, bytes) else method).upper()
        url = url.decode() if isinstance(url, bytes) else url
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._request_timeout
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            try:
                response = super(_ApiSession, self).request(method, url, *args, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if method not in _IDEMPOTENT:
                    raise self._no_answer(method, url, exc, attempts) from None
                raise _NoAnswer(exc) from None
            if self._retryable(method, response.status_code):
                raise _RetryableAnswer(response)
            return response

        try:
            response = self._policy.call(attempt)
        except _NoAnswer as exc:
            raise self._no_answer(method, url, exc.cause, attempts) from None
        except _RetryableAnswer as exc:
            response = exc.response
        if response.status_code >= 400:
            raise self._error(method, url, response, attempts)
        return response

    def _no_answer(self, method: str, url: str, exc: BaseException, attempts: int) -> DigitalOceanAPIError:
        return DigitalOceanAPIError(
            self._scrub(f"DigitalOcean API: {method} {_path(url)}: no answer ({type(exc).__name__})"
                        f" after {attempts} attempt(s)")
        )

    @staticmethod
    def _retryable(method: str, status: int) -> bool:
        # A 429 was not processed, so any method may repeat it. A 5xx may have
        # been processed; repeating a POST could create a second record or
        # cluster, so only idempotent methods retry it. envspec's commands
        # re-plan from scratch on the next run, so failing there is safe.
        if status == 429:
            return True
        return status >= 500 and method in _IDEMPOTENT

    def _error(self, method: str, url: str, response: requests.Response, attempts: int) -> DigitalOceanAPIError:
        error_id, message = _error_body(response)
        status = response.status_code
        text = f"DigitalOcean API: {method} {_path(url)} failed with HTTP {status}: {message}"
        if attempts > 1:
            text += f" (after {attempts} attempts)"
        if status == 401:
            text += f"; check that {TOKEN_ENV} holds a valid, unexpired API token"
        elif status == 403:
            text += f"; the token in {TOKEN_ENV} lacks the scope for this call"
        return DigitalOceanAPIError(self._scrub(text), status=status, error_id=error_id)

    def _scrub(self, text: str) -> str:
        secret = self._token.reveal()
        return text.replace(secret, "<redacted>") if secret else text


def _path(url: str) -> str:
    """The URL's path: enough to say which call failed, never a query string."""
    return urlsplit(url).path or url


class DigitalOceanClient:
    """DigitalOcean DNS records and Kubernetes clusters, through one retrying session."""

    def __init__(
        self,
        token: str,
        *,
        end_point: str = DEFAULT_END_POINT,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ):
        """`policy` defaults to `default_policy()`; `sleep`, when given, replaces the policy's (for tests)."""
        if not token:
            raise SpecError(f"{TOKEN_ENV} is empty; export a DigitalOcean API token")
        parts = urlsplit(end_point)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SpecError(f"{END_POINT_ENV}={end_point!r} is not an http(s) URL")
        self.end_point = end_point if end_point.endswith("/") else end_point + "/"
        self._token = _Token(token)
        chosen = policy or default_policy()
        if sleep is not None:
            chosen = dataclasses.replace(chosen, sleep=sleep)
        self._session = _ApiSession(self._token, chosen, request_timeout)

    @classmethod
    def from_env(
        cls, *, policy: RetryPolicy | None = None, sleep: Callable[[float], None] | None = None
    ) -> DigitalOceanClient:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise SpecError(
                f"{TOKEN_ENV} is not set; export a DigitalOcean API token with read and write scope "
                "(DigitalOcean control panel > API > Tokens)"
            )
        return cls(token, end_point=os.environ.get(END_POINT_ENV) or DEFAULT_END_POINT, policy=policy, sleep=sleep)

    def __repr__(self) -> str:
        return f"DigitalOceanClient(end_point={self.end_point!r})"

    # -- plumbing ---------------------------------------------------------

    def _do_kwargs(self) -> dict[str, Any]:
        """What every python-digitalocean object gets: token, end point and our session."""
        return {"token": self._token.reveal(), "end_point": self.end_point, "_session": self._session}

    def _call(self, what: str, func: Callable[[], T]) -> T:
        """Run a python-digitalocean call, turning its exceptions into ones a person can act on."""
        try:
            return func()
        except DigitalOceanAPIError:
            raise
        except baseapi.NotFoundError:
            raise DigitalOceanAPIError(f"DigitalOcean API: {what}: not found (HTTP 404)", status=404) from None
        except IndexError:
            # python-digitalocean indexes [id, message][1] on an error body with fewer keys.
            raise DigitalOceanAPIError(f"DigitalOcean API: {what}: failed with an unreadable error body") from None
        except (baseapi.DataReadError, baseapi.JSONReadError, baseapi.TokenError, baseapi.EndPointError) as exc:
            raise DigitalOceanAPIError(
                self._session._scrub(f"DigitalOcean API: {what}: {type(exc).__name__}: {exc}")
            ) from None

    def _url(self, path: str) -> str:
        return urljoin(self.end_point, path)

    def _json(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, self._url(path), json=body, params=params)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise DigitalOceanAPIError(
                f"DigitalOcean API: {method} {_path(response.url)} answered HTTP {response.status_code} "
                "with a body that is not JSON",
                status=response.status_code,
            ) from None

    def _pages(self, path: str, key: str, per_page: int = 200) -> Iterator[dict[str, Any]]:
        """Items of a paginated list, following `links.pages.next` only on the API's own host."""
        url: str | None = self._url(path)
        params: dict[str, Any] | None = {"per_page": per_page}
        origin = urlsplit(self.end_point)[:2]
        seen: set[str] = set()
        while url:
            response = self._session.request("GET", url, params=params)
            try:
                data = response.json()
            except ValueError:
                raise DigitalOceanAPIError(
                    f"DigitalOcean API: GET {_path(url)} answered with a body that is not JSON",
                    status=response.status_code,
                ) from None
            yield from data.get(key) or []
            next_url = ((data.get("links") or {}).get("pages") or {}).get("next")
            if not next_url:
                return
            if urlsplit(next_url)[:2] != origin:
                # Never send the token to a host the pagination link names.
                raise DigitalOceanAPIError(f"DigitalOcean API: {path}: pagination link leaves {self.end_point}")
            if next_url in seen:
                raise DigitalOceanAPIError(f"DigitalOcean API: {path}: pagination loops on {_path(next_url)}")
            seen.add(next_url)
            url, params = next_url, None  # the link carries page and per_page

    # -- DNS (python-digitalocean) ----------------------------------------

    def check_domain(self, domain: str) -> None:
        """Fail clearly when the domain is not hosted in this DigitalOcean account."""
        try:
            self._call(f"domain {domain}", lambda: digitalocean.Domain(name=domain, **self._do_kwargs()).load())
        except DigitalOceanAPIError as exc:
            if exc.status == 404:
                raise DigitalOceanAPIError(
                    f"domain {domain} is not managed by this DigitalOcean account (HTTP 404); "
                    "add it under Networking > Domains, or fix dns.domain",
                    status=404,
                ) from None
            raise

    def list_records(self, domain: str) -> list[DnsRecord]:
        """Every record in the domain; python-digitalocean follows the pagination links."""
        zone = digitalocean.Domain(name=domain, **self._do_kwargs())
        found = self._call(f"list records of {domain}", zone.get_records)
        return [
            DnsRecord(id=int(r.id), type=str(r.type), name=str(r.name), data=str(r.data), ttl=int(r.ttl or 0))
            for r in found
        ]

    def create_record(self, domain: str, *, type: str, name: str, data: str, ttl: int) -> DnsRecord:
        # POST on our session: python-digitalocean's Record.create would use requests.post (see module doc).
        body = {"type": type, "name": name, "data": data, "ttl": ttl}
        answer = self._json("POST", f"domains/{domain}/records", body=body)
        return _record_from(answer, f"create record {name} {type} in {domain}")

    def update_record(self, domain: str, record: DnsRecord, *, data: str, ttl: int) -> None:
        do_record = digitalocean.Record(
            domain_name=domain,
            id=record.id,
            type=record.type,
            name=record.name,
            data=data,
            ttl=ttl,
            **self._do_kwargs(),
        )
        self._call(f"update record {record.name} {record.type} in {domain}", do_record.save)

    def delete_record(self, domain: str, record: DnsRecord) -> None:
        do_record = digitalocean.Record(domain_name=domain, id=record.id, **self._do_kwargs())
        self._call(f"delete record {record.name} {record.type} in {domain}", do_record.destroy)

    # -- Kubernetes (plain HTTP on the same session) ------------------------

    def list_clusters(self) -> list[dict[str, Any]]:
        return list(self._pages("kubernetes/clusters", "kubernetes_clusters"))

    def find_cluster(self, name: str) -> dict[str, Any] | None:
        """The cluster with this name, or None. Names are unique per account; two matches is an error."""
        matches = [c for c in self.list_clusters() if c.get("name") == name]
        if len(matches) > 1:
            ids = ", ".join(str(c.get("id")) for c in matches)
            raise DigitalOceanAPIError(f"DigitalOcean holds {len(matches)} clusters named {name} ({ids})")
        return matches[0] if matches else None

    def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        return self._json("GET", f"kubernetes/clusters/{cluster_id}")["kubernetes_cluster"]

    def create_cluster(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "kubernetes/clusters", body=body)["kubernetes_cluster"]

    def update_node_pool(self, cluster_id: str, pool_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", f"kubernetes/clusters/{cluster_id}/node_pools/{pool_id}", body=body)["node_pool"]

    def get_kubeconfig(self, cluster_id: str, *, expiry_seconds: int | None = None) -> str:
        """The cluster's kubeconfig as YAML text. It holds a credential: never print it."""
        params = {"expiry_seconds": expiry_seconds} if expiry_seconds else None
        response = self._session.request(
            "GET", self._url(f"kubernetes/clusters/{cluster_id}/kubeconfig"), params=params,
            headers={"Accept": "application/yaml"},
        )
        return response.text


def _record_from(answer: Any, what: str) -> DnsRecord:
    try:
        raw = answer["domain_record"]
        return DnsRecord(id=int(raw["id"]), type=raw["type"], name=raw["name"], data=raw["data"], ttl=int(raw["ttl"]))
    except (TypeError, KeyError, ValueError):
        raise DigitalOceanAPIError(f"DigitalOcean API: {what}: unexpected answer shape") from None
