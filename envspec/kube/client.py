"""Which cluster we talk to, and a thin, retrying door to its API.

The seed project once applied a preview to production because the runner's
current kube context pointed there. So connecting is two explicit steps:
`load_target` resolves the kubeconfig and context into a `KubeTarget`
(context name, API server URL, the file that supplied the context, the CA
fingerprint) that the CLI prints first, and `check_binding` (with
`envspec.kube.binding` for the DigitalOcean check) refuses to go on when that
target is not the cluster the environment declares. `$KUBECONFIG=a:b` is
merged by the client library's own `KubeConfigMerger`, as kubectl merges it. Only then does `Kube` send requests, each through the
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
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envspec.errors import Location, OperationError, Problem, SpecError
from envspec.plan import ClusterBinding
from envspec.kube.retry import RetryPolicy

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes.client import ApiClient
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.resource import Resource

FIELD_MANAGER = "envspec"
POOL_SIZE = 16  # connections kept per API server (concurrent apply workers + the lease renewal)


def _plain(_client: Any, data: Any) -> Any:
    """The response body as decoded JSON: callers want plain dicts, and wrapping every response in
    the DynamicClient's ResourceInstance only to unwrap it with to_dict() costs more than the request."""
    return data


@dataclass(frozen=True)
class KubeTarget:
    """The resolved destination: printed before any command touches a cluster."""

    context: str | None
    server: str
    kubeconfig: str | None  # what was read: --kubeconfig, or $KUBECONFIG's list (a:b), or ~/.kube/config
    context_file: str | None = None  # the kubeconfig file whose entry supplied the context
    ca_fingerprint: str | None = None  # sha256:<hex> of the context's cluster CA certificate (DER), if it has one

    def describe(self) -> str:
        context = self.context or "(no context)"
        source = f" (context from {self.context_file})" if self.context_file else ""
        return f"target: context {context} at {self.server}{source}"


def normalise_server(url: str) -> str:
    """An API server URL as binding compares it: no surrounding space or trailing slash, lower case."""
    return url.strip().rstrip("/").lower()


def default_kubeconfig() -> str:
    """$KUBECONFIG (a list of files, as kubectl reads it), else ~/.kube/config; read at call time.

    kubernetes.config's own KUBE_CONFIG_DEFAULT_LOCATION is the same rule, but it is
    evaluated once, when the library is imported; a long-lived process (or a test)
    that sets KUBECONFIG later would not see it.
    """
    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


def kubeconfig_files(spec: str) -> list[str]:
    """The files a kubeconfig list names, split with the library's own separator (':' or ';' on Windows)."""
    from kubernetes.config.kube_config import ENV_KUBECONFIG_PATH_SEPARATOR

    return [os.path.expanduser(p) for p in spec.split(ENV_KUBECONFIG_PATH_SEPARATOR) if p]


_SECTIONS = {"clusters": "cluster", "contexts": "context", "users": "user"}


def _shape_problems(path: str) -> list[Problem]:
    """What in one kubeconfig file the library's merge would trip over (it assumes a well-formed file)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark is not None else Location(path)
        return [Problem(f"not valid YAML: {exc.problem or exc}", where)]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [Problem(f"cannot read kubeconfig: {' '.join(str(exc).split())}", Location(path))]
    if data is None:
        return [Problem("the kubeconfig file is empty", Location(path))]
    if not isinstance(data, dict):
        return [Problem("not a kubeconfig: expected a mapping with clusters, contexts and users", Location(path))]
    problems = []
    for section, inner in _SECTIONS.items():
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            problems.append(Problem("must be a list", Location(path), section))
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                problems.append(Problem("each entry needs a name", Location(path), f"{section}[{i}]"))
            elif entry.get(inner) is not None and not isinstance(entry[inner], dict):
                problems.append(Problem("must be a mapping", Location(path), f"{section}[{i}].{inner}"))
            elif section == "clusters" and not isinstance((entry.get(inner) or {}).get("server", ""), str):
                problems.append(Problem("must be a URL", Location(path), f"{section}[{i}].{inner}.server"))
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        problems.append(Problem("must be a context name", Location(path), "current-context"))
    return problems


def _current_context(merger: Any) -> str | None:
    """kubectl's rule: the first file that sets current-context wins (the library's merger keeps the last)."""
    for path in merger.paths:
        current = (merger.config_files.get(path) or {}).get("current-context")
        if current:
            return str(current)
    return None


def _first_file_with(merger: Any, section: str, name: str | None) -> str | None:
    """Which file supplied the named entry: the first that has it, as in the library's (and kubectl's) merge."""
    for path in merger.paths:
        entries = (merger.config_files.get(path) or {}).get(section) or []
        if any(isinstance(e, dict) and e.get("name") == name for e in entries):
            return str(path)
    return None


def ca_fingerprint(pem: str) -> str:
    """`sha256:<hex>` of a PEM certificate's DER bytes: what `openssl x509 -outform der | sha256sum` prints."""
    import hashlib
    import ssl

    return "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.strip() + "\n")).hexdigest()


def _cluster_ca_fingerprint(merger: Any, context: str | None) -> str | None:
    """The CA fingerprint of the context's cluster entry (certificate-authority-data, or the file it names)."""
    import base64

    def named(section: str, name: Any) -> Any:
        return next((e for e in merger.config.value.get(section) or [] if e.value.get("name") == name), None)

    ctx = named("contexts", context)
    cluster = named("clusters", (ctx.value.get("context") or {}).get("cluster")) if ctx is not None else None
    if cluster is None:
        return None
    entry = cluster.value.get("cluster") or {}
    try:
        if entry.get("certificate-authority-data"):
            pem = base64.b64decode(entry["certificate-authority-data"]).decode("ascii")
        elif entry.get("certificate-authority"):
            ca_path = Path(os.path.expanduser(entry["certificate-authority"]))
            if not ca_path.is_absolute() and cluster.path:
                ca_path = Path(cluster.path).parent / ca_path
            pem = ca_path.read_text(encoding="ascii")
        else:
            return None
        return ca_fingerprint(pem)
    except (ValueError, OSError, UnicodeDecodeError):
        return None  # a CA that cannot be read proves nothing; a declared fingerprint then refuses


def load_target(kubeconfig: str | os.PathLike[str] | None, context: str | None) -> tuple[KubeTarget, "ApiClient"]:
    """Read the kubeconfig (merging $KUBECONFIG's files as kubectl does) and build an ApiClient for the context."""
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigMerger

    import yaml

    spec = str(kubeconfig) if kubeconfig else default_kubeconfig()
    files = kubeconfig_files(spec)
    if kubeconfig is not None and len(files) > 1:
        raise SpecError(f"--kubeconfig {spec}: takes one file (as kubectl's does); "
                        "to merge several, set KUBECONFIG=a:b instead")
    if not any(Path(f).exists() for f in files):
        if len(files) == 1:
            raise SpecError(f"kubeconfig {files[0]} does not exist; pass --kubeconfig PATH or set KUBECONFIG")
        raise SpecError(f"none of the kubeconfig files in KUBECONFIG exists ({', '.join(files)}); "
                        "pass --kubeconfig PATH or fix KUBECONFIG")
    shape = [problem for f in files if Path(f).exists() for problem in _shape_problems(f)]
    if shape:
        raise SpecError(shape)
    try:
        # The library's own merge (first file wins for each named cluster, context and user, as in kubectl).
        merger = KubeConfigMerger(spec)
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read kubeconfig {spec}: {' '.join(str(exc).split())}") from None
    if merger.config is None:
        raise SpecError(f"cannot read kubeconfig {spec}: no configuration found")
    contexts = [e.value for e in merger.config.value.get("contexts") or []]
    names = [c.get("name") for c in contexts if isinstance(c, dict)]
    read = ", ".join(merger.paths)
    chosen = context or _current_context(merger)
    if context is not None and context not in names:
        raise SpecError(f"context {context!r} is not in kubeconfig {read} (known: {', '.join(map(str, names)) or 'none'})")
    if chosen is None:
        raise SpecError(f"kubeconfig {read} sets no current-context; pass --context NAME (known: {', '.join(map(str, names)) or 'none'})")
    if chosen not in names:
        raise SpecError(f"the current context {chosen!r} is not defined in kubeconfig {read} "
                        f"(known: {', '.join(map(str, names)) or 'none'}); pass --context NAME")
    from kubernetes.client import Configuration

    configuration = Configuration()
    # Our RetryPolicy owns retries; urllib3's own silent retries would multiply attempts.
    configuration.retries = False
    # apply writes up to 8 objects at once (envspec.kube.apply.APPLY_WORKERS), plus the lease renewal:
    # each keeps its own keep-alive connection instead of opening and dropping one per request.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, POOL_SIZE)
    try:
        api_client = kube_config.new_client_from_config_dict(
            config_dict=merger.config, context=chosen, persist_config=False, client_configuration=configuration
        )
    except (ConfigException, TypeError, AttributeError, KeyError, ValueError) as exc:
        raise SpecError(f"cannot use context {chosen!r} from {read}: {' '.join(str(exc).split())}") from None
    target = KubeTarget(
        context=chosen,
        server=api_client.configuration.host,
        kubeconfig=spec,
        context_file=_first_file_with(merger, "contexts", chosen),
        ca_fingerprint=_cluster_ca_fingerprint(merger, chosen),
    )
    return target, api_client


def check_binding(
    binding: ClusterBinding,
    target: KubeTarget,
    *,
    environment: str,
    explicit_context: str | None = None,
) -> None:
    """Refuse to touch a cluster the environment is not bound to (what the kubeconfig alone can tell).

    The resolved context must be the declared one (naming it with --context is
    how an operator picks it when it is not current); a declared server URL
    must be exactly the context's; a declared CA fingerprint must be the
    context's cluster CA's. A context name alone identifies nothing (doctl
    names every context `do-<region>-<cluster name>`, in every account), so the
    bundled environments also bind by what identifies the cluster; the
    DigitalOcean check is `envspec.kube.binding`.
    """
    problems: list[str] = []
    if binding.context and target.context != binding.context:
        how = "--context" if explicit_context else "the current context"
        problems.append(
            f"environment {environment} is bound to kube context {binding.context!r}, "
            f"but {how} is {target.context!r} ({target.server}); "
            f"pass --context {binding.context} to deploy to the declared cluster"
        )
    if binding.server and normalise_server(target.server) != normalise_server(binding.server):
        problems.append(
            f"environment {environment} is bound to API server {binding.server}, "
            f"but context {target.context!r} points at {target.server}; refusing"
        )
    if binding.ca_fingerprint and (target.ca_fingerprint or "").lower() != binding.ca_fingerprint.lower():
        found = (
            f"its cluster's CA certificate has fingerprint {target.ca_fingerprint}" if target.ca_fingerprint
            else "its cluster entry has no readable certificate-authority-data or certificate-authority file"
        )
        problems.append(
            f"environment {environment} is bound to the cluster whose CA certificate has fingerprint "
            f"{binding.ca_fingerprint}, but context {target.context!r} ({target.server}): {found}; refusing"
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


def _as_dict(got: Any) -> dict[str, Any]:
    """A response body as a dict (a body that was not JSON arrives as text: an empty dict then)."""
    if isinstance(got, dict):
        return got
    return got.to_dict() if hasattr(got, "to_dict") else {}


def _where(kind: str, name: str | None, namespace: str | None) -> str:
    return "/".join(p for p in (kind, namespace, name) if p)


class Kube:
    """get/list/apply/delete on plain dicts, through DynamicClient, with retries.

    Safe to share between threads (apply writes concurrently): the connection pool is, and
    discovery is behind a lock. Discovery is read once per Kube and cached; a kind it does not
    list makes it re-read once, and is then taken as not served until `refresh_discovery()`
    (which apply calls after creating CRDs or installing charts), so a plan with kinds the
    cluster lacks does not re-read discovery on every look.
    """

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
        self._discovery_lock = threading.RLock()
        # Kinds discovery did not list even when re-read: not served until the next refresh_discovery().
        self._missing: set[tuple[str, str]] = set()
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
            with self._discovery_lock:
                if self._dyn is None:
                    self._dyn = self._connect()
        return self._dyn

    def _connect(self) -> "DynamicClient":
        from kubernetes.dynamic import DynamicClient

        cache = os.path.join(self._cache_dir, "discovery.json")
        try:
            return self.retry.call(lambda: DynamicClient(self.api_client, cache_file=cache))
        except Exception as exc:  # noqa: BLE001 - reported as one actionable line
            raise OperationError(f"cannot reach the Kubernetes API at {self.server}: {api_message(exc)}") from None

    def refresh_discovery(self) -> None:
        """Forget discovered kinds, e.g. after CRDs were created."""
        with self._discovery_lock:
            self._resources.clear()
            self._missing.clear()
            self._discover(self.dyn.resources.invalidate_cache, "refresh discovery")

    def resource(self, api_version: str, kind: str) -> "Resource":
        key = (api_version, kind)
        found = self._resources.get(key)
        if found is not None:
            return found
        with self._discovery_lock:
            return self._resource(api_version, kind)

    def _resource(self, api_version: str, kind: str) -> "Resource":
        key = (api_version, kind)
        if key in self._resources:
            return self._resources[key]
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        def lookup() -> "Resource":
            # Named by prefix and group: a bare "v1" would match every group that serves a v1 and
            # make the discoverer fetch the resource list of each one.
            if "/" in api_version:
                group, version = api_version.split("/", 1)
                return self.dyn.resources.get(prefix="apis", group=group, api_version=version, kind=kind)
            return self.dyn.resources.get(prefix="api", api_version=api_version, kind=kind)

        def missing() -> NotServedError:
            self._missing.add(key)
            return NotServedError(
                f"the cluster at {self.server} does not serve {kind} ({api_version}); "
                "is its CRD or API group installed?"
            )

        if key in self._missing:
            raise missing()
        try:
            # On a miss the client's discoverer re-reads discovery itself, once, before it gives up.
            found = self._discover(lookup, f"discover {kind} ({api_version})")
        except ResourceNotFoundError:
            raise missing() from None
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
                lambda: self.dyn.get(res, name=name, namespace=ns, _request_timeout=self.request_timeout,
                                     serializer=_plain),
                "get", kind, name, ns, not_found_ok=True,
            )
        except NotFoundError:
            return None
        return _as_dict(got)

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
                serializer=_plain,
            ),
            "list", kind, None, ns,
        )
        got = _as_dict(got)
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
            lambda: self.dyn.server_side_apply(res, body=obj, name=meta["name"], namespace=ns, serializer=_plain,
                                               **kwargs),
            "apply", obj["kind"], meta.get("name"), ns,
        )
        return _as_dict(got)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST: create only, never overwrite (KubeApiError status 409 when the object already exists)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") if res.namespaced else None
        got = self._call(
            lambda: self.dyn.create(
                res, body=obj, namespace=ns, field_manager=self.field_manager, _request_timeout=self.request_timeout,
                serializer=_plain,
            ),
            "create", obj["kind"], meta.get("name"), ns,
        )
        return _as_dict(got)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT with the object's resourceVersion as a precondition (KubeApiError 409 when it moved on)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") if res.namespaced else None
        got = self._call(
            lambda: self.dyn.replace(
                res, body=obj, name=meta["name"], namespace=ns, field_manager=self.field_manager,
                _request_timeout=self.request_timeout, serializer=_plain,
            ),
            "replace", obj["kind"], meta.get("name"), ns,
        )
        return _as_dict(got)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Delete one object; False when it was already gone.

        With `uid`, only that very object: one deleted and recreated under the same name since it
        was listed (by someone else, or a concurrent apply) is not ours to delete, and counts as gone.
        """
        from kubernetes.client import V1DeleteOptions, V1Preconditions
        from kubernetes.dynamic.exceptions import NotFoundError

        res = self.resource(api_version, kind)
        ns = namespace if res.namespaced else None
        body = V1DeleteOptions(preconditions=V1Preconditions(uid=uid)) if uid else None
        try:
            self._call(
                lambda: self.dyn.delete(
                    res,
                    name=name,
                    namespace=ns,
                    body=body,
                    propagation_policy=propagation,
                    _request_timeout=self.request_timeout,
                ),
                "delete", kind, name, ns, not_found_ok=True,
            )
        except NotFoundError:
            return False
        except KubeApiError as exc:
            if uid and exc.status == 409 and "precondition" in str(exc).lower():
                return False  # the object listed is gone; the one now under its name is another
            raise
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
    from envspec.kube.binding import enforce_binding

    target, api_client = load_target(kubeconfig, context)
    if binding is not None:
        try:
            enforce_binding(binding, target, environment=environment, explicit_context=context)
        except BaseException:
            api_client.close()
            raise
    return target, Kube(api_client, retry=retry, request_timeout=request_timeout)
