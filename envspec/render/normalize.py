"""Stage 6: make the parsed objects canonical.

Every object gets envspec's labels; pod templates get a checksum of the
ConfigMaps and Secrets they read (so a config change rolls the pods); objects
are put in a fixed kind order and their keys in a stable order. Nothing here
depends on the machine, the clock or dict insertion accidents: same input, same
bytes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from itertools import islice
from typing import Any, Iterable

from envspec.kinds import JOBS, is_cluster_scoped, is_known_namespaced, order_of, pod_template_of
from envspec.objects import object_id, pod_spec_of, pod_template_of_object
from envspec.render.templates import RenderedObject

CHECKSUM_ANNOTATION = "envspec.dev/config-checksum"

TOP_KEYS = ["apiVersion", "kind", "metadata", "type", "spec", "data", "stringData", "binaryData"]
META_KEYS = ["name", "namespace", "labels", "annotations"]
CONTAINER_KEYS = ["name", "image", "imagePullPolicy", "command", "args"]


def _rank(obj: dict[str, Any]) -> int:
    """Output order by kind (envspec.kinds): CRDs, Namespaces, cluster-scoped kinds, config, workloads,
    Services, routes and certificates, other kinds, then Jobs in their declared order."""
    return order_of(obj["kind"])


def _order_keys(value: Any, preferred: list[str] | None = None, sort_rest: bool = False) -> Any:
    """Preferred keys first, then the rest in their (deterministic) template order or sorted."""
    if not isinstance(value, dict):
        return value
    order = _key_order(value, preferred or [], sort_rest)
    return dict(value) if order is None else {k: value[k] for k in order}


def _key_order(value: dict[Any, Any], preferred: list[str], sort_rest: bool) -> list[Any] | None:
    """The keys of `value` as `_order_keys` orders them; None when that is the order they already have
    (most mappings: no preferred key, or `name` already first), which saves building the list."""
    if not sort_rest and len(preferred) == 1:  # the common case, `name` first: no list built unless it moves
        first = preferred[0]
        if first not in value or next(iter(value)) == first:
            return None
        return [first, *(k for k in value if k != first)]
    keys = [k for k in preferred if k in value]
    if not sort_rest and (not keys or list(islice(value, len(keys))) == keys):
        return None
    rest = [k for k in value if k not in keys]
    if sort_rest:
        rest.sort()
    return keys + rest


# How a mapping's keys are ordered, by the key it is found under (see _canonical).
_SORTED_UNDER = frozenset({"labels", "annotations", "matchLabels", "selector", "data", "stringData", "hard", "nodeSelector"})
_NAME_FIRST = ["name"]
_PREFERRED_UNDER = {"metadata": META_KEYS, "containers": CONTAINER_KEYS, "initContainers": CONTAINER_KEYS}


def _canonical(value: Any, last: str = "") -> Any:
    """`value` with every mapping's keys in canonical order; `last` is the key it is found under
    (list items count as found under their list's key). Scalars are shared, containers are new."""
    if isinstance(value, dict):
        preferred = _PREFERRED_UNDER.get(last)
        if preferred is None and last not in _SORTED_UNDER and ("name" not in value or next(iter(value)) == "name"):
            order = None  # the common case, checked here rather than in _key_order: most mappings are these
        else:
            order = _key_order(value, preferred or _NAME_FIRST, last in _SORTED_UNDER)
        if order is None:
            return {k: _canonical(v, k if isinstance(k, str) else str(k)) if isinstance(v, (dict, list)) else v for k, v in value.items()}
        return {k: _canonical(value[k], k if isinstance(k, str) else str(k)) if isinstance(value[k], (dict, list)) else value[k] for k in order}
    if isinstance(value, list):
        return [_canonical(v, last) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _canonical_object(obj: dict[str, Any]) -> dict[str, Any]:
    """One whole object made canonical: TOP_KEYS first, then the rest in canonical order."""
    return _order_keys(_canonical(obj), TOP_KEYS)


def _references(pod_spec: dict[str, Any]) -> tuple[set[str], set[str]]:
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        for source in container.get("envFrom", []) or []:
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
        for env in container.get("env", []) or []:
            ref = env.get("valueFrom", {}) or {}
            if "configMapKeyRef" in ref:
                config_maps.add(ref["configMapKeyRef"]["name"])
            if "secretKeyRef" in ref:
                secrets.add(ref["secretKeyRef"]["name"])
    for volume in pod_spec.get("volumes", []) or []:
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
    return config_maps, secrets


def _checksum(parts: Iterable[Any]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def _place(obj: dict[str, Any], labels: dict[str, str], namespace: str | None) -> dict[str, Any] | None:
    """Labels on the object and its pod template, and its namespace by scope (in place); returns the
    pod template's metadata, or None for an object without a pod template.

    `obj` is a copy of the top level only: the mappings changed below it (metadata, the path to the
    pod template) are copied first, so the object it was copied from is never changed -- whatever
    else holds it (a template's kept output, a spec's raw object) keeps what it had."""
    meta = obj["metadata"] = dict(obj.setdefault("metadata", {}))
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    if is_cluster_scoped(obj["kind"]):
        meta.pop("namespace", None)
    elif namespace and not meta.get("namespace") and is_known_namespaced(obj["kind"]):
        meta["namespace"] = namespace
    template = _own_pod_template(obj)
    if template is None:
        return None
    template_meta = template["metadata"] = dict(template.setdefault("metadata", {}))
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
    return template_meta


def _own_pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """`pod_template_of_object(obj)`, with every mapping on the way to it copied into `obj`."""
    if pod_template_of_object(obj) is None:
        return None
    spec = obj["spec"] = dict(obj["spec"])
    if pod_template_of(obj["kind"]) == "jobTemplate":
        job = spec["jobTemplate"] = dict(spec["jobTemplate"])
        spec = job["spec"] = dict(job["spec"])
    template = spec["template"] = dict(spec["template"])
    return template


def normalize_object(obj: dict[str, Any], labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    """One object that exists only at apply or destroy time (the drop Job, the ApplySet parent, a built
    Secret's skeleton), made canonical the way `normalize` makes rendered ones: the same labels on it and
    its pod template, the same namespace by scope, the same key order. No config checksum: such an object
    reads no rendered config. Returns a copy; `obj` is left alone."""
    out = copy.deepcopy(obj)
    _place(out, labels, namespace)
    return _canonical_object(out)


def is_normalized(obj: dict[str, Any], labels: dict[str, str]) -> bool:
    """True when normalising `obj` with `labels` would change nothing but key order: it carries the labels
    (on its pod template too) and its namespace fits its scope. What the tests check of every object
    apply and destroy send, after apply added its own labels and annotations."""
    return normalize_object(obj, labels) == obj


def normalize(
    rendered: list[RenderedObject],
    labels: dict[str, str],
    secret_sources: dict[tuple[str, str], Any],
    namespace: str | None = None,
) -> tuple[list[dict[str, Any]], list[RenderedObject]]:
    """Labels, checksums, canonical key order and kind order. `secret_sources` maps (namespace, name) to
    the declaration of a Secret built at apply time: its checksum covers the declaration, never a value.
    An object of a kind known to be namespaced (envspec.kinds) rendered without a namespace gets
    `namespace` (the environment's), so nothing lands where a kubeconfig happens to default to.
    Returns the objects and, index for index, what each was rendered from (its spec origin, its file)."""
    objects = [dict(r.obj) for r in rendered]
    config_data = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]): {k: o.get(k) for k in ("data", "binaryData")}
        for o in objects
        if o["kind"] == "ConfigMap"
    }
    for obj in objects:
        template_meta = _place(obj, labels, namespace)
        pod_spec = pod_spec_of(obj)
        if template_meta is None or pod_spec is None:
            continue
        obj_namespace = obj["metadata"].get("namespace")  # not `namespace`: the default for every later object
        config_maps, secrets = _references(pod_spec)
        if config_maps or secrets:
            parts = [["ConfigMap", n, config_data.get((obj_namespace, n))] for n in sorted(config_maps)]
            parts += [["Secret", n, secret_sources.get((obj_namespace, n))] for n in sorted(secrets)]
            annotations = dict(template_meta.get("annotations") or {})
            annotations[CHECKSUM_ANNOTATION] = _checksum(parts)
            template_meta["annotations"] = annotations

    # Stable sort: kind rank, then namespace and name -- except Jobs, which keep their declared order.
    indexed = list(enumerate(objects))
    indexed.sort(key=_sort_key)
    ordered = [_canonical_object(obj) for _, obj in indexed]
    return ordered, [rendered[index] for index, _ in indexed]


def _sort_key(pair: tuple[int, dict[str, Any]]) -> tuple[int, int, str, str, str]:
    index, obj = pair
    rank = _rank(obj)
    meta = obj["metadata"]
    return (rank, index if rank == JOBS else 0, obj["kind"], meta.get("namespace") or "", meta["name"])


def duplicate_ids(objects: list[dict[str, Any]]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for obj in objects:
        oid = f"{obj['apiVersion'].split('/')[0]}:{object_id(obj)}"
        if oid in seen:
            dupes.append(object_id(obj))
        seen.add(oid)
    return dupes


def secret_skeleton(name: str, namespace: str, secret_type: str, labels: dict[str, str]) -> dict[str, Any]:
    """The Secret a `secrets:` entry builds, without data, through the same normalisation (labels, key
    order) as every rendered object. The compiler runs the rules over it (it is never rendered: its
    values exist only at apply time); apply and diff only fill in its data."""
    meta = {"name": name, "namespace": namespace}
    return normalize_object({"apiVersion": "v1", "kind": "Secret", "type": secret_type, "metadata": meta}, labels)
