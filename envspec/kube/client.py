"""Which cluster we talk to, and a thin, retrying door to its API.

The seed project once applied a preview to production because the runner's
current kube context pointed there. So connecting is two explicit steps:
`load_target` resolves the kubeconfig and context into a `KubeTarget`
(context name + API server URL) that the CLI prints first, and
`check_binding` refuses to go on when that target is not the cluster the
environment declares. Only then does `Kube` send requests, each through the
official DynamicClient and the `RetryPolicy`.

`Kube` is deliberately thin: get/list/apply/delete on plain dicts. Deciding
*what* to send lives in apply/diff/destroy. It is also where the client's
exceptions stop: a refusal (401, 403, 422...) becomes a `KubeApiError` naming
the request and the API server's message, and a failure that outlived the
retries becomes "the API server did not answer", so no command ends in a
traceback. Only "not found" is reported as a value (None / False) where
callers expect it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envspec.errors import OperationError, Problem, SpecError
from envspec.kube.plan import ClusterBinding
from envspec.kube.retry import RetryPolicy

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes.client import ApiClient
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.resource import Resource

FIELD_MANAGER = "envspec"


@dataclass(frozen=True)
class KubeTarget:
    """The resolved destination: printed before any command touches a cluster."""

    context: str | None
    server: str
    kubeconfig: str | None

    def describe(self) -> str:
        context = self.context or "(no context)"
        return f"target: context {context} at {self.server}"


def _normalise_server(url: str) -> str:
    return url.strip().rstrip("/").lower()


def default_kubeconfig() -> str | None:
    """The first file in $KUBECONFIG, else ~/.kube/config (read at call time, not import time)."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    home = Path.home() / ".kube" / "config"
    return str(home)


def load_target(kubeconfig: str | os.PathLike[str] | None, context: str | None) -> tuple[KubeTarget, "ApiClient"]:
    """Read the kubeconfig and build an ApiClient for the chosen (or current) context."""
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    path = str(kubeconfig) if kubeconfig else default_kubeconfig()
    if path is None or not Path(path).exists():
        raise SpecError(f"kubeconfig {path} does not exist; pass --kubeconfig PATH or set KUBECONFIG")
    try:
        contexts, current = kube_config.list_kube_config_contexts(config_file=path)
    except ConfigException as exc:
        raise SpecError(f"cannot read kubeconfig {path}: {exc}") from None
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if context is not None and context not in names:
        raise SpecError(f"context {context!r} is not in kubeconfig {path} (known: {', '.join(names) or 'none'})")
    from kubernetes.client import Configuration

    configuration = Configuration()
    # Our RetryPolicy owns retries; urllib3's own silent retries would multiply attempts.
    configuration.retries = False
    try:
        api_client = kube_config.new_client_from_config(
            config_file=path, context=chosen, persist_config=False, client_configuration=configuration
        )
    except ConfigException as exc:
        raise SpecError(f"cannot use context {chosen!r} from {path}: {exc}") from None
    return KubeTarget(context=chosen, server=api_client.configuration.host, kubeconfig=path), api_client


def check_binding(
    binding: ClusterBinding,
    target: KubeTarget,
    *,
    environment: str,
    explicit_context: str | None = None,
) -> None:
    """Refuse to touch a cluster the environment is not bound to.

    The resolved context must be the declared one (naming it with --context is
    how an operator picks it when it is not current), and when a server URL is
    declared the context must point at exactly that server.
    """
    problems: list[str] = []
    if binding.context and target.context != binding.context:
        how = "--context" if explicit_context else "the current context"
        problems.append(
            f"environment {environment} is bound to kube context {binding.context!r}, "
            f"but {how} is {target.context!r} ({target.server}); "
            f"pass --context {binding.context} to deploy to the declared cluster"
        )
    if binding.server and _normalise_server(target.server) != _normalise_server(binding.server):
        problems.append(
            f"environment {environment} is bound to API server {binding.server}, "
            f"but context {target.context!r} points at {target.server}; refusing"
        )
    if problems:
        raise SpecError([Problem(p) for p in problems])


def api_message(exc: BaseException) -> str:
    """The API server's own one-line message for an error, falling back to the status."""
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body if isinstance(body, str) else body.decode())
            if isinstance(data, dict) and data.get("message"):
                return str(data["message"])
        except (ValueError, AttributeError):
            pass
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def api_body(exc: BaseException) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if not body:
        return {}
    try:
        data = json.loads(body if isinstance(body, str) else body.decode())
    except (ValueError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _is_client_error(exc: BaseException) -> bool:
    """Transport failures of the kubernetes client (urllib3), which carry no HTTP status."""
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


class KubeApiError(OperationError):
    """The API server refused a request. Keeps status and body so callers can say more (409, 422)."""

    def __init__(self, message: str, *, status: int | None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class NotServedError(OperationError):
    """The cluster does not serve a kind (its CRD or API group is not installed)."""


def _where(kind: str, name: str | None, namespace: str | None) -> str:
    return "/".join(p for p in (kind, namespace, name) if p)


class Kube:
    """get/list/apply/delete on plain dicts, through DynamicClient, with retries."""

    def __init__(
        self,
        api_client: "ApiClient",
        *,
        retry: RetryPolicy | None = None,
        request_timeout: float = 30.0,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.api_client = api_client
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.field_manager = field_manager
        self._dyn: DynamicClient | None = None
        self._resources: dict[tuple[str, str], Resource] = {}
        # Discovery is cached per Kube, never in a shared /tmp file another run (or port) could leave stale.
        self._cache_dir = tempfile.mkdtemp(prefix="envspec-discovery-")

    @property
    def server(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        shutil.rmtree(self._cache_dir, ignore_errors=True)
        self.api_client.close()

    def __enter__(self) -> "Kube":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- discovery -----------------------------------------------------------------

    @property
    def dyn(self) -> "DynamicClient":
        if self._dyn is None:
            from kubernetes.dynamic import DynamicClient

            cache = os.path.join(self._cache_dir, "discovery.json")
            try:
                self._dyn = self.retry.call(lambda: DynamicClient(self.api_client, cache_file=cache))
            except Exception as exc:  # noqa: BLE001 - reported as one actionable line
                raise OperationError(f"cannot reach the Kubernetes API at {self.server}: {api_message(exc)}") from None
        return self._dyn

    def refresh_discovery(self) -> None:
        """Forget discovered kinds, e.g. after CRDs were created."""
        self._resources.clear()
        self._discover(self.dyn.resources.invalidate_cache, "refresh discovery")

    def resource(self, api_version: str, kind: str) -> "Resource":
        key = (api_version, kind)
        if key in self._resources:
            return self._resources[key]
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        def lookup() -> "Resource":
            return self.dyn.resources.get(api_version=api_version, kind=kind)

        try:
            found = self._discover(lookup, f"discover {kind} ({api_version})")
        except ResourceNotFoundError:
            self.refresh_discovery()
            try:
                found = self._discover(lookup, f"discover {kind} ({api_version})")
            except ResourceNotFoundError:
                raise NotServedError(
                    f"the cluster at {self.server} does not serve {kind} ({api_version}); "
                    "is its CRD or API group installed?"
                ) from None
        self._resources[key] = found
        return found

    def _discover(self, func: Any, what: str) -> Any:
        """Discovery requests: ResourceNotFoundError passes (callers handle it), API failures become one line."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.retry.call(func)
        except ResourceNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as one actionable line
            if status_of(exc) is None and not _is_client_error(exc):
                raise
            raise OperationError(f"{what} at {self.server}: {api_message(exc)}") from None

    def is_served(self, api_version: str, kind: str) -> bool:
        try:
            self.resource(api_version, kind)
        except NotServedError:
            return False
        return True

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return bool(self.resource(api_version, kind).namespaced)

    # --- requests ------------------------------------------------------------------

    def _call(
        self,
        func: Any,
        verb: str,
        kind: str,
        name: str | None = None,
        namespace: str | None = None,
        *,
        not_found_ok: bool = False,
    ) -> Any:
        """Send one request through the retry policy; every failure but an expected 404 is an OperationError."""
        from kubernetes.dynamic.exceptions import NotFoundError

        from envspec.kube.retry import is_transient

        try:
            return self.retry.call(func)
        except Exception as exc:  # noqa: BLE001 - turned into one actionable line
            if not_found_ok and isinstance(exc, NotFoundError):
                raise
            status = status_of(exc)
            if is_transient(exc):
                raise OperationError(
                    f"{verb} {_where(kind, name, namespace)}: the API server at {self.server} did not answer "
                    f"after {self.retry.attempts} attempts: {api_message(exc)}"
                ) from None
            if status:
                raise KubeApiError(
                    f"{verb} {_where(kind, name, namespace)}: HTTP {status}: {api_message(exc)}",
                    status=status,
                    body=getattr(exc, "body", None),
                ) from None
            raise

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        res = self.resource(api_version, kind)
        ns = namespace if res.namespaced else None
        try:
            got = self._call(
                lambda: self.dyn.get(res, name=name, namespace=ns, _request_timeout=self.request_timeout),
                "get", kind, name, ns, not_found_ok=True,
            )
        except NotFoundError:
            return None
        return got.to_dict()

    def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        res = self.resource(api_version, kind)
        ns = namespace if res.namespaced else None
        got = self._call(
            lambda: self.dyn.get(
                res,
                namespace=ns,
                label_selector=label_selector,
                field_selector=field_selector,
                _request_timeout=self.request_timeout,
            ),
            "list", kind, None, ns,
        ).to_dict()
        items = got.get("items") or []
        for item in items:  # list items omit apiVersion/kind; put them back so callers can name them
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def apply(self, obj: dict[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply with envspec's field manager; KubeApiError (with status and body) when refused."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        kwargs: dict[str, Any] = {"field_manager": self.field_manager, "_request_timeout": self.request_timeout}
        if force:
            kwargs["force_conflicts"] = True
        if dry_run:
            kwargs["dry_run"] = "All"
        ns = meta.get("namespace") if res.namespaced else None
        got = self._call(
            lambda: self.dyn.server_side_apply(res, body=obj, name=meta["name"], namespace=ns, **kwargs),
            "apply", obj["kind"], meta.get("name"), ns,
        )
        return got.to_dict()

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST: create only; KubeApiError with status 409 when the object already exists."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") if res.namespaced else None
        got = self._call(
            lambda: self.dyn.create(
                res, body=obj, namespace=ns, field_manager=self.field_manager, _request_timeout=self.request_timeout
            ),
            "create", obj["kind"], meta.get("name"), ns,
        )
        return got.to_dict()

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT with the body's metadata.resourceVersion as precondition; KubeApiError 409 when it moved on."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") if res.namespaced else None
        got = self._call(
            lambda: self.dyn.replace(
                res, body=obj, name=meta["name"], namespace=ns, field_manager=self.field_manager,
                _request_timeout=self.request_timeout,
            ),
            "replace", obj["kind"], meta.get("name"), ns,
        )
        return got.to_dict()

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete one object; False when it was already gone."""
        from kubernetes.dynamic.exceptions import NotFoundError

        res = self.resource(api_version, kind)
        ns = namespace if res.namespaced else None
        try:
            self._call(
                lambda: self.dyn.delete(
                    res,
                    name=name,
                    namespace=ns,
                    propagation_policy=propagation,
                    _request_timeout=self.request_timeout,
                ),
                "delete", kind, name, ns, not_found_ok=True,
            )
        except NotFoundError:
            return False
        return True

    def finalize_namespace(self, name: str) -> None:
        """Clear a Terminating namespace's finalizers (the documented last resort for a stuck namespace)."""
        from kubernetes.dynamic.exceptions import NotFoundError

        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "spec": {"finalizers": []},
        }
        try:
            self._call(
                lambda: self.dyn.request(
                    "put", f"/api/v1/namespaces/{name}/finalize", body=body, _request_timeout=self.request_timeout
                ),
                "finalize", "Namespace", name, not_found_ok=True,
            )
        except NotFoundError:
            return

    def pod_log(self, namespace: str, name: str, *, tail_lines: int = 20) -> str:
        """The pod's last log lines, or "" when there are none to read (yet): a diagnostic, never fatal."""
        try:
            resp = self._call(
                lambda: self.dyn.request(
                    "get",
                    f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                    query_params=[("tailLines", tail_lines)],
                    serialize=False,
                    _request_timeout=self.request_timeout,
                ),
                "read log of", "Pod", name, namespace,
            )
        except OperationError:
            return ""
        data = getattr(resp, "data", b"")
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def connect(
    kubeconfig: str | os.PathLike[str] | None,
    context: str | None,
    *,
    binding: ClusterBinding | None = None,
    environment: str = "",
    retry: RetryPolicy | None = None,
    request_timeout: float = 30.0,
) -> tuple[KubeTarget, Kube]:
    """Resolve the target, enforce the binding, and return a ready `Kube` (no request sent yet)."""
    target, api_client = load_target(kubeconfig, context)
    if binding is not None:
        try:
            check_binding(binding, target, environment=environment, explicit_context=context)
        except SpecError:
            api_client.close()
            raise
    return target, Kube(api_client, retry=retry, request_timeout=request_timeout)
