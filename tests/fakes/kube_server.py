"""An in-memory Kubernetes API server for tests, spoken to over real HTTP.

Why: envspec's cluster code uses the official `kubernetes` client (typed APIs
and `DynamicClient`); mocking that client would test our mocks, not our
requests. `FakeKube` serves the parts of the API envspec uses on a loopback
port, so the real client, and `kubectl`, run unchanged against it.

What it fakes: discovery (`/version`, `/api`, `/apis`, per-group resource
lists, no aggregated discovery, no OpenAPI), GET/LIST (label and simple field
selectors), POST, PUT, DELETE (single and collection, owner-reference and
namespace cascade), JSON patch, JSON merge patch, strategic merge patch (lists
merge by their patch merge key; `$patch: delete|replace`, `$retainKeys`,
`$deleteFromPrimitiveList`; refused for custom resources, as upstream),
server-side apply with per-manager field ownership per list item
(`k:{"name":"web"}`), removal of fields a manager stopped applying unless
another owns them, and conflicts per field, dry runs, pod logs, a Table
response for `kubectl get`, CRD registration, `auto_ready` status for
workload kinds, and an optional per-request `latency` (a network round trip,
for benchmarks). Merge semantics come from the upstream definitions
kubernetes-validate ships (`envspec.apidefs`: list types and map keys,
atomic maps, patch strategies); a CRD's own openAPIV3Schema when it was
created here; otherwise lists are atomic, like a server without a schema.
Resource quantities are stored canonicalised (`0.25` -> `250m`, `1024Mi` ->
`1Gi`; `envspec.quantity`, which follows apimachinery and is checked against
its examples in tests/test_kube_ssa.py).

What it does not fake: watches, authentication, defaulting, validation
beyond Job template immutability and the optional ResourceQuota/LimitRange
check, controllers (except the tiny `auto_ready` one), continue tokens, and
resourceVersion semantics beyond a counter and PUT preconditions.

kubectl works with `--validate=false` for `apply` (it cannot fetch OpenAPI
schemas here); `kubectl get` needs no extra flags.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from envspec import quantity
from envspec.kube.fieldset import (
    OWNERLESS_METADATA,
    FieldPath,
    decode,
    encode,
    fieldset,
    item_key,
    list_shape,
    path_text,
    user_fields,
)
from envspec.apidefs import TypeInfo, type_of

FAKE_NOW = "2025-01-01T00:00:00Z"  # fixed clock: no-op applies stay byte-identical
SERVER_VERSION = "1.32"  # the schema version served (kubernetes-validate ships its definitions)
_INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass(frozen=True)
class Kind:
    """One served resource type; the store is keyed by (group, kind) so versions share objects."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    custom: bool = False  # custom resources keep apiVersion/kind on list items, like the real server

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_ref(self) -> str:
        """How real error messages name the resource: `deployments.apps`, `configmaps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_BUILTIN_KINDS = [
    Kind("", "v1", "Namespace", "namespaces", False, ("ns",)),
    Kind("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Kind("", "v1", "Secret", "secrets"),
    Kind("", "v1", "Service", "services", True, ("svc",)),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Kind("", "v1", "Pod", "pods", True, ("po",)),
    Kind("", "v1", "Event", "events", True, ("ev",)),
    Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",)),
    Kind("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",)),
    Kind("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    Kind("apps", "v1", "Deployment", "deployments", True, ("deploy",)),
    Kind("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",)),
    Kind("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",)),
    Kind("batch", "v1", "Job", "jobs"),
    Kind("batch", "v1", "CronJob", "cronjobs", True, ("cj",)),
    Kind("coordination.k8s.io", "v1", "Lease", "leases"),
    Kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    Kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    Kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
         ("crd", "crds")),
    # Served by every API server since 1.30 (preview-base renders the CI credentials' policies).
    Kind("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", False),
    Kind("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
         "validatingadmissionpolicybindings", False),
]
_PREINSTALLED_CRDS = [
    Kind("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, ("gtw",), custom=True),
    Kind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True, (), custom=True),
    Kind("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False, ("gc",), custom=True),
    Kind("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants", True, ("refgrant",),
         custom=True),
    Kind("cert-manager.io", "v1", "Certificate", "certificates", True, ("cert", "certs"), custom=True),
    Kind("cert-manager.io", "v1", "Issuer", "issuers", True, (), custom=True),
    Kind("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers", False, (), custom=True),
    Kind("external-secrets.io", "v1beta1", "ExternalSecret", "externalsecrets", True, ("es",), custom=True),
    # What the monitoring and gateway charts add (kube-prometheus-stack, nginx-gateway-fabric).
    Kind("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", True, ("smon",), custom=True),
    Kind("gateway.nginx.org", "v1alpha1", "RateLimitPolicy", "ratelimitpolicies", True, (), custom=True),
]
_SUBRESOURCES = {"pods": ("log", "status"), "namespaces": ("finalize", "status")}


@dataclass
class Request:
    """One request as the server saw it; `body` is parsed JSON/YAML, or None."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    method: str | None
    path_regex: str | None
    status: int
    times: int
    delay: float
    body: dict | None
    headers: dict | None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path_regex or re.search(self.path_regex, path) is not None


class ApiError(Exception):
    """A failure answered with a `Status` body, shaped like the real apiserver's."""

    _REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
                429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}

    def __init__(self, code: int, message: str, *, reason: str | None = None, details: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or self._REASONS.get(code, "Unknown")
        self.details, self.headers = details, dict(headers or {})

    def status(self) -> dict:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


# ---------------------------------------------------------------- field paths

Path_ = tuple[str, ...]  # plain keys (field selectors, JSON patch)
_MISSING = object()


def _lookup(obj: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _merge(live: dict, patch: dict) -> None:
    """JSON merge patch (RFC 7386): maps merge, lists and scalars replace, null deletes."""
    for key, value in patch.items():
        if value is None:
            live.pop(key, None)
        elif isinstance(value, dict) and isinstance(live.get(key), dict):
            _merge(live[key], value)
        else:
            live[key] = copy.deepcopy(value)


def _user_fields(obj: dict) -> dict:
    """The part of an object field managers can own: no identity, bookkeeping or status."""
    return copy.deepcopy(user_fields(obj))


def _at(value: Any, path: FieldPath, t: TypeInfo) -> Any:
    """The value a FieldsV1 path names (a list item for `k:`/`v:` keys), or _MISSING."""
    for pe in path:
        if pe.startswith("f:"):
            if not isinstance(value, dict) or pe[2:] not in value:
                return _MISSING
            value, t = value[pe[2:]], t.field(pe[2:])
        else:
            if not isinstance(value, list):
                return _MISSING
            shape, keys = list_shape(t, None)
            value = next((i for i in value if item_key(i, shape, keys) == pe), _MISSING)
            if value is _MISSING:
                return _MISSING
            t = t.item()
    return value


def _remove_at(root: dict, path: FieldPath, t: TypeInfo) -> None:
    """Remove one field or list item; maps and lists the removal empties go too (the server omits them)."""
    trail: list[tuple[Any, str, TypeInfo]] = []  # (container, key, type of the container)
    value: Any = root
    for pe in path:
        trail.append((value, pe, t))
        nxt = _at(value, (pe,), t)
        if nxt is _MISSING:
            return
        value, t = nxt, (t.field(pe[2:]) if pe.startswith("f:") else t.item())
    for depth in range(len(trail) - 1, -1, -1):
        container, pe, ct = trail[depth]
        if pe.startswith("f:"):
            container.pop(pe[2:], None)
        else:
            shape, keys = list_shape(ct, None)
            container[:] = [i for i in container if item_key(i, shape, keys) != pe]
        if container or depth == 0:
            break


def _is_item(path: FieldPath) -> bool:
    return bool(path) and not path[-1].startswith("f:")


def _covers(a: FieldPath, b: FieldPath) -> bool:
    """True when owning `a` means owning `b` too: the same path, or `a` a whole (atomic) value above `b`."""
    return a == b or (len(a) < len(b) and b[: len(a)] == a and not _is_item(a))


def _changed(before: Any, after: Any, path: FieldPath, t: TypeInfo) -> bool:
    old, new = _at(before, path, t), _at(after, path, t)
    if _is_item(path):
        return old is _MISSING  # an item exists or not; its fields change one by one
    return old != new


# ---------------------------------------------------------------- quantities

def canonicalize(value: Any, t: TypeInfo) -> Any:
    """Every resource.Quantity in canonical form, as the real server stores it; QuantityError if malformed."""
    if t.is_quantity and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return quantity.canonical(value)
    if isinstance(value, dict):
        return {k: canonicalize(v, t.field(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [canonicalize(v, t.item()) for v in value]
    return value


def _undecodable(k: "Kind", exc: Exception) -> ApiError:
    """The real server's answer to a body it cannot decode (e.g. `cpu: lots`)."""
    return ApiError(400, f'{k.kind} in version "{k.version}" cannot be handled as a {k.kind}: {exc}')


def _check_keys(value: Any, t: TypeInfo, where: str = "") -> None:
    """What server-side apply refuses in an applied config: an item of a keyed list without its key,
    or two items with the same key (422, in the apiserver's words)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _check_keys(sub, t.field(key), f"{where}.{key}")
    elif isinstance(value, list):
        shape, keys = list_shape(t, None)
        seen: set[str] = set()
        for item in value:
            pe = item_key(item, shape, keys)
            if shape == "map" and pe is None:
                missing = next((k for k in keys if not isinstance(item, dict) or k not in item), keys[0])
                raise ApiError(422, f"{where}: associative list with keys has an element that omits key field "
                                    f'"{missing}" (and doesn\'t have default value)')
            if pe is not None and pe in seen:
                raise ApiError(422, f"{where}: duplicate entries for key {path_text((pe,))}")
            if pe is not None:
                seen.add(pe)
            if shape != "set":
                _check_keys(item, t.item(), f"{where}{path_text((pe,)) if pe else '[]'}")


# ---------------------------------------------------------------- server-side apply merge

def _ssa_merge(live: Any, applied: Any, t: TypeInfo) -> Any:
    """Merge an applied config into live state: maps by field, associative lists by key, sets by value."""
    if isinstance(applied, dict) and isinstance(live, dict) and not t.map_atomic:
        out = copy.deepcopy(live)
        for key, value in applied.items():
            out[key] = _ssa_merge(live[key], value, t.field(key)) if key in live else copy.deepcopy(value)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        shape, keys = list_shape(t, None)
        if shape != "atomic" and None not in [item_key(i, shape, keys) for i in applied]:
            return _merge_items(live, applied, t.item(), shape, keys)
    return copy.deepcopy(applied)


def _merge_items(live: list, applied: list, item_type: TypeInfo, shape: str, keys: tuple[str, ...]) -> list:
    """structured-merge-diff's order for a keyed list or set: items both sides hold follow the applied
    order, items only live holds keep their place, new items go where the applied config puts them."""
    lpes = [item_key(i, shape, keys) for i in live]
    rpes = [item_key(i, shape, keys) for i in applied]
    lhs, rhs = {}, {}
    for pe, item in zip(lpes, live):
        lhs.setdefault(pe, item)
    for pe, item in zip(rpes, applied):
        rhs.setdefault(pe, item)

    def merged(pe: Any) -> Any:
        if shape == "map" and pe in lhs:
            return _ssa_merge(lhs[pe], rhs[pe], item_type)
        return copy.deepcopy(rhs[pe])

    shared = [pe for pe in rpes if pe in lhs]
    upcoming = shared.pop(0) if shared else None
    out: list = []
    done: set = set()
    li = ri = 0
    while li < len(lpes) or ri < len(rpes):
        if li < len(lpes) and ri < len(rpes):
            pe = lpes[li]
            if pe == rpes[ri]:
                if pe not in done:
                    out.append(merged(pe))
                done.add(pe)
                li, ri = li + 1, ri + 1
                upcoming = shared.pop(0) if shared else None
                continue
            if pe in rhs and upcoming is not None and upcoming != pe:
                li += 1  # a shared item, but not the one due now: it comes with the applied order
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in rhs:
                out.append(copy.deepcopy(live[li]))
                li += 1
                continue
            if pe in done:
                li += 1
                continue
        if ri < len(rpes):
            pe = rpes[ri]
            if pe not in done:
                out.append(merged(pe))
            done.add(pe)
            ri += 1
            if upcoming is not None and upcoming == pe:
                upcoming = shared.pop(0) if shared else None
    return out


# ---------------------------------------------------------------- strategic merge patch

_DELETE = object()


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge(live: Any, patch: Any, t: TypeInfo) -> Any:
    """Kubernetes strategic merge patch: lists with patch strategy `merge` merge by their patch merge
    key (primitive lists by value); `$patch: replace|delete`, `$retainKeys`,
    `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` directives; null deletes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives(patch)
    if directive not in (None, "merge"):
        raise ApiError(400, f"unknown patch type: {directive}")
    out = copy.deepcopy(live) if isinstance(live, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [v for v in out[name] if v not in (value or [])]
            continue
        ft = t.field(key)
        if value is None:
            out.pop(key, None)
            continue
        if isinstance(value, list):
            result = _strategic_list(out.get(key), value, ft)
        elif isinstance(value, dict):
            result = strategic_merge(out.get(key), value, ft)
        else:
            result = value
        if result is _DELETE:
            out.pop(key, None)
        else:
            out[key] = result
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _strategic_list(live: Any, patch: list, t: TypeInfo) -> Any:
    live = live if isinstance(live, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if "merge" not in t.patch_strategy:
        return _strip_directives(patch)
    key = t.patch_merge_key
    out = copy.deepcopy(live)
    if key is None:  # a list of scalars merges as a union
        out += [copy.deepcopy(v) for v in patch if v not in out]
        return out
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiError(400, f"map: {item!r} does not contain declared merge key: {key}")
        idx = next((n for n, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(_strip_directives(item))
        else:
            out[idx] = strategic_merge(out[idx], item, t.item())
    return out


# ---------------------------------------------------------------- field ownership (server-side apply)

def _entries(obj: dict | None) -> list[dict]:
    """managedFields with their fieldsV1 decoded into path sets (the only ownership state kept)."""
    return [dict(e, paths=decode(e.get("fieldsV1", {})))
            for e in (obj or {}).get("metadata", {}).get("managedFields", [])]


def _set_managed(obj: dict, entries: list[dict], api_version: str) -> None:
    managed = [{"manager": e["manager"], "operation": e.get("operation", "Update"),
                "apiVersion": e.get("apiVersion", api_version), "time": FAKE_NOW,
                "fieldsType": "FieldsV1", "fieldsV1": encode(e["paths"])}
               for e in entries if e["paths"]]
    if managed:
        obj.setdefault("metadata", {})["managedFields"] = managed
    else:
        obj.get("metadata", {}).pop("managedFields", None)


def apply_fields(live: dict, body: dict, manager: str, api_version: str, *, force: bool,
                 schema: TypeInfo | None = None) -> list[tuple[dict, FieldPath]]:
    """Server-side apply `body` onto `live` in place; returns the conflicts instead when not forced.

    The applier owns the field set of its config (list items by key, `k:{"name":"web"}`). A
    conflict is a field another manager owns that the apply changes; equal values become shared
    ownership. Fields the applier owned before and now omits are removed unless another manager
    still owns them (or something beneath them).
    """
    t = schema or TypeInfo(None)
    applied = canonicalize(_user_fields(body), t)
    _check_keys(applied, t)
    mine = fieldset(applied, t)
    entries = _entries(live)
    own = next((e for e in entries if e["manager"] == manager and e.get("operation") == "Apply"), None)
    current = _user_fields(live)
    merged = _ssa_merge(current, applied, t)
    changed = {p for p in mine if _changed(current, merged, p, t)}
    conflicts: list[tuple[dict, FieldPath]] = []
    taken: list[tuple[dict, FieldPath]] = []
    for entry in entries:
        if entry is own:
            continue
        for theirs in sorted(entry["paths"]):
            path = next((p for p in sorted(changed) if _covers(p, theirs) or _covers(theirs, p)), None)
            if path is not None:
                conflicts.append((entry, path))
                taken.append((entry, theirs))
    if conflicts and not force:
        return conflicts
    for entry, theirs in taken:
        entry["paths"].discard(theirs)
    others = set().union(*(e["paths"] for e in entries if e is not own))
    previous = own["paths"] if own else set()
    kept = others | mine
    gone = {p for p in previous - mine
            if not any(_covers(p, q) or _covers(q, p) or q[: len(p)] == p for q in kept)}
    for path in sorted(gone, key=len, reverse=True):
        if not any(len(g) < len(path) and path[: len(g)] == g for g in gone):  # an item goes as a whole
            _remove_at(merged, path, t)
    for key in [k for k in live if k not in ("apiVersion", "kind", "metadata", "status")]:
        live.pop(key)
    meta = live.setdefault("metadata", {})
    for key in [k for k in meta if k not in OWNERLESS_METADATA]:
        meta.pop(key)
    meta.update(merged.pop("metadata", {}))
    live.update(merged)
    if own is None:
        own = {"manager": manager, "operation": "Apply"}
        entries.append(own)
    own.update(paths=mine, apiVersion=api_version)
    _set_managed(live, entries, api_version)
    return []


def record_update(api_version: str, old: dict | None, new: dict, manager: str,
                  schema: TypeInfo | None = None) -> None:
    """Non-apply writes (POST, PUT, patches) take the fields they add or change, as operation Update;
    fields they remove leave every owner."""
    t = schema or TypeInfo(None)
    before, after = _user_fields(old or {}), _user_fields(new)
    had, has = fieldset(before, t), fieldset(after, t)
    changed = (has - had) | {p for p in has & had if _changed(before, after, p, t)}
    removed = had - has
    entries = _entries(old)
    for entry in entries:
        entry["paths"] = {p for p in entry["paths"]
                          if p not in removed and not any(_covers(c, p) for c in changed)}
    own = next((e for e in entries if e["manager"] == manager and e.get("operation") == "Update"), None)
    if own is None and changed:
        own = {"manager": manager, "operation": "Update", "paths": set()}
        entries.append(own)
    if own is not None:
        own["paths"] |= changed
    _set_managed(new, entries, api_version)


def _conflict_error(k: Kind, name: str, conflicts: list[tuple[dict, FieldPath]]) -> ApiError:
    """The apiserver's wording: Apply failed with N conflict(s): conflict with "mgr"[ using v]: .path"""
    def who(entry: dict) -> str:
        text = '"' + entry["manager"] + '"'
        return text if entry.get("operation") == "Apply" else f"{text} using {entry.get('apiVersion')}"
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {who(e)}", "field": path_text(p)}
              for e, p in conflicts]
    if len(conflicts) == 1:
        text = f"conflict with {who(conflicts[0][0])}: {causes[0]['field']}"
    else:
        lines: list[str] = []
        for manager in sorted({who(e) for e, _ in conflicts}):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {c['field']}" for (e, _), c in zip(conflicts, causes) if who(e) == manager]
        text = "\n".join(lines)
    plural = "" if len(conflicts) == 1 else "s"
    return ApiError(409, f"Apply failed with {len(conflicts)} conflict{plural}: {text}", reason="Conflict",
                    details={"name": name, "group": k.group, "kind": k.plural, "causes": causes})


# ---------------------------------------------------------------- selectors

_SET_REQ = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_REQ = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*))?\s*$")


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def label_matcher(selector: str | None):
    """Compile a label selector (equality, set-based, existence) into a predicate over labels."""
    checks = []
    for req in _split_requirements(selector or ""):
        if m := _SET_REQ.match(req):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                checks.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                checks.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
        elif m := _EQ_REQ.match(req):
            neg, key, op, value = m.groups()
            if neg and op:
                raise ApiError(400, f"unable to parse requirement: {req.strip()!r}")
            if neg:
                checks.append(lambda lb, k=key: k not in lb)
            elif op is None:
                checks.append(lambda lb, k=key: k in lb)
            elif op == "!=":
                checks.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                checks.append(lambda lb, k=key, v=value: lb.get(k) == v)
        else:
            raise ApiError(400, f"unable to parse requirement: found {req.strip()!r}, expected a valid selector")
    return lambda labels: all(check(labels or {}) for check in checks)


def _field_matcher(selector: str | None):
    checks = []
    for req in _split_requirements(selector or ""):
        m = re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", req)
        if not m:
            raise ApiError(400, f"invalid field selector: {req.strip()!r}")
        path, op, value = tuple(m.group(1).split(".")), m.group(2), m.group(3)

        def check(obj: dict, p: Path_ = path, o: str = op, v: str = value) -> bool:
            got = _lookup(obj, p)
            got = "" if got is _MISSING else str(got)
            return (got != v) if o == "!=" else (got == v)
        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)


# ---------------------------------------------------------------- quota

def _quota_missing(pod_spec: dict, hard: dict, limit_ranges: list[dict]) -> dict[str, list[str]]:
    """Which quota-tracked compute resources each container fails to declare (after LimitRange defaults)."""
    tracked = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
    required = tracked & set(hard)
    defaults: dict[str, dict] = {"limits": {}, "requests": {}}
    for lr in limit_ranges:
        for item in lr.get("spec", {}).get("limits", []):
            if item.get("type") == "Container":
                defaults["limits"].update(item.get("default", {}))
                defaults["requests"].update(item.get("defaultRequest", {}))
    missing: dict[str, list[str]] = {}
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        res = container.get("resources", {})
        limits = {**defaults["limits"], **res.get("limits", {})}
        requests = {**defaults["requests"], **limits, **res.get("requests", {})}  # requests default to limits
        have = {f"limits.{k}" for k in limits} | {f"requests.{k}" for k in requests} | set(requests)
        for name in sorted(required - have):
            missing.setdefault(name, []).append(container.get("name", "?"))
    return missing


# ---------------------------------------------------------------- the server

class FakeKube:
    """In-memory Kubernetes API on 127.0.0.1; see the module docstring for scope."""

    def __init__(self, *, auto_ready: bool = True, quota_enforcement: bool = False,
                 gateway_address: str | None = "203.0.113.7", latency: float = 0.0):
        self.auto_ready = auto_ready
        # Seconds each request waits before it is served (a network round trip; requests wait in
        # parallel, as on a real API server), so benchmarks see what concurrency buys.
        self.latency = latency
        # What a gateway controller publishes in a ready Gateway's status.addresses (None: no address yet).
        self.gateway_address = gateway_address
        self.quota_enforcement = quota_enforcement
        self.stuck_namespaces: set[str] = set()
        self.requests: list[Request] = []
        self.url = ""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._kinds: list[Kind] = [*_BUILTIN_KINDS, *_PREINSTALLED_CRDS]
        self._objects: dict[tuple[str, str, str, str], dict] = {}
        self._logs: dict[tuple[str, str], str] = {}
        self._faults: list[_Fault] = []
        self._connections: set[Any] = set()  # open keep-alive sockets, closed by stop()
        self._rv = 100
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for ns in _INITIAL_NAMESPACES:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "FakeKube":
        fake = self
        self._stopping.clear()

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="fake-kube")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on a delay fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:  # ends handler threads parked on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "FakeKube":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_kubeconfig(self, path: str | Path, *, context: str = "fake", cluster: str = "fake-cluster",
                         user: str = "fake-user") -> Path:
        path = Path(path)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context, "preferences": {},
            "clusters": [{"name": cluster, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": user, "namespace": "default"}}],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ------------------------------------------------------------ kinds
    def register_crd_kind(self, group: str, version: str, kind: str, plural: str, *, namespaced: bool = True,
                          short_names: tuple[str, ...] = ()) -> Kind:
        """Serve a custom kind, as if its CRD were installed and Established."""
        with self._lock:
            found = self._kind_by_plural(group, version, plural)
            if found:
                return found
            new = Kind(group, version, kind, plural, namespaced, tuple(short_names), custom=True)
            self._kinds.append(new)
            return new

    def _kind_by_plural(self, group: str, version: str, plural: str) -> Kind | None:
        return next((k for k in self._kinds if (k.group, k.version, k.plural) == (group, version, plural)), None)

    def _kind(self, api_version: str, kind: str) -> Kind:
        group, _, version = api_version.rpartition("/")
        found = next((k for k in self._kinds if (k.group, k.version, k.kind) == (group, version, kind)), None)
        if found is None:
            raise ApiError(404, f'no matches for kind "{kind}" in version "{api_version}"')
        return found

    def _register_from_crd(self, crd: dict) -> None:
        spec, names = crd.get("spec", {}), crd.get("spec", {}).get("names", {})
        for ver in spec.get("versions", []):
            if ver.get("served", True):
                self.register_crd_kind(spec.get("group", ""), ver["name"], names.get("kind", ""),
                                       names.get("plural", ""), namespaced=spec.get("scope") != "Cluster",
                                       short_names=tuple(names.get("shortNames", [])))

    def _schema(self, k: Kind) -> TypeInfo:
        """The type server-side apply and patches follow: the upstream definition of a built-in kind,
        a registered CRD's own openAPIV3Schema, or none (maps granular, lists atomic)."""
        if not k.custom:
            return type_of(k.api_version, k.kind, SERVER_VERSION)
        for (g, kd, _, _), crd in self._objects.items():
            spec = crd.get("spec", {})
            if kd == "CustomResourceDefinition" and spec.get("group") == k.group \
                    and spec.get("names", {}).get("kind") == k.kind:
                for ver in spec.get("versions", []):
                    if ver.get("name") == k.version:
                        return TypeInfo.from_openapi((ver.get("schema") or {}).get("openAPIV3Schema"))
        return TypeInfo(None)

    # ------------------------------------------------------------ state helpers (no request logged)
    def _key(self, k: Kind, name: str, namespace: str | None) -> tuple[str, str, str, str]:
        return (k.group, k.kind, (namespace or "") if k.namespaced else "", name)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        with self._lock:
            obj = self._objects.get(self._key(self._kind(api_version, kind), name, namespace))
            return copy.deepcopy(obj) if obj else None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(o) for o in self._select(self._kind(api_version, kind), namespace,
                                                           label_selector, None)]

    def put(self, obj: dict) -> dict:
        """Seed an object as-is (no admission, no auto_ready); fills uid/resourceVersion if absent."""
        with self._lock:
            k = self._kind(obj["apiVersion"], obj["kind"])
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not k.namespaced:
                meta.pop("namespace", None)
            elif not meta.get("namespace"):
                meta["namespace"] = "default"
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", FAKE_NOW)
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = self._next_rv()
            if k.kind == "Namespace":
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj.setdefault("status", {"phase": "Active"})
            self._objects[self._key(k, meta["name"], meta.get("namespace"))] = obj
            if k.kind == "CustomResourceDefinition":
                self._register_from_crd(obj)
            return copy.deepcopy(obj)

    def delete_direct(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        with self._lock:
            obj = self._objects.get(self._key(self._kind(api_version, kind), name, namespace))
            if obj is not None:
                self._remove_object(self._kind(api_version, kind), obj, cascade=True)

    def set_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: dict) -> None:
        with self._lock:
            obj = self._objects.get(self._key(self._kind(api_version, kind), name, namespace))
            if obj is None:
                raise KeyError(f"{kind} {namespace}/{name} does not exist")
            obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def add_event(self, namespace: str, *, involved_kind: str, involved_name: str, reason: str, message: str,
                  type: str = "Warning") -> None:
        with self._lock:
            suffix = hashlib.sha1(f"{self._rv}{reason}{message}".encode()).hexdigest()[:16]
            involved: dict[str, Any] = {"kind": involved_kind, "name": involved_name, "namespace": namespace}
            target = next((o for (g, kd, ns, n), o in self._objects.items()
                           if kd == involved_kind and ns == namespace and n == involved_name), None)
            if target:
                involved.update(apiVersion=target.get("apiVersion"), uid=target["metadata"].get("uid"))
            self.put({"apiVersion": "v1", "kind": "Event",
                      "metadata": {"name": f"{involved_name}.{suffix}", "namespace": namespace},
                      "involvedObject": involved, "reason": reason, "message": message, "type": type,
                      "count": 1, "firstTimestamp": FAKE_NOW, "lastTimestamp": FAKE_NOW,
                      "source": {"component": "fake-kube"}})

    def add_pod(self, namespace: str, name: str, *, labels: dict, owner_kind: str | None = None,
                owner_name: str | None = None, container_statuses: list | None = None,
                phase: str = "Pending") -> None:
        with self._lock:
            meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
            if owner_kind and owner_name:
                owner = next((o for (g, kd, ns, n), o in self._objects.items()
                              if kd == owner_kind and ns == namespace and n == owner_name), None)
                kind = next((k for k in self._kinds if k.kind == owner_kind), None)
                meta["ownerReferences"] = [{
                    "apiVersion": owner["apiVersion"] if owner else (kind.api_version if kind else "v1"),
                    "kind": owner_kind, "name": owner_name, "controller": True, "blockOwnerDeletion": True,
                    "uid": owner["metadata"]["uid"] if owner else str(uuid.uuid4())}]
            status: dict[str, Any] = {"phase": phase}
            if container_statuses is not None:  # the typed client insists on these fields
                status["containerStatuses"] = [
                    {"image": "fake", "imageID": "", "ready": False, "restartCount": 0, **cs}
                    for cs in copy.deepcopy(container_statuses)]
            names = [c.get("name", "main") for c in container_statuses or []] or ["main"]
            self.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                      "spec": {"containers": [{"name": n, "image": "fake"} for n in names]}, "status": status})

    def set_pod_log(self, namespace: str, pod: str, text: str) -> None:
        with self._lock:
            self._logs[(namespace, pod)] = text

    # ------------------------------------------------------------ faults and request log
    def add_fault(self, *, method: str | None = None, path_regex: str | None = None, status: int = 500,
                  times: int = 1, delay: float = 0.0, body: dict | None = None,
                  headers: dict | None = None) -> None:
        """Fail the next `times` matching requests; with `delay`, sleep first.

        A status below 400 with a delay serves the request normally after sleeping.
        """
        with self._lock:
            self._faults.append(_Fault(method, path_regex, status, times, delay, body, headers))

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method.upper())
                       and (path_contains is None or path_contains in r.path))

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
            return None

    # ------------------------------------------------------------ storage internals
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _select(self, k: Kind, namespace: str | None, label_selector: str | None,
                field_selector: str | None) -> list[dict]:
        labels_ok, fields_ok = label_matcher(label_selector), _field_matcher(field_selector)
        found = [o for (g, kd, ns, _), o in self._objects.items()
                 if (g, kd) == (k.group, k.kind) and (not namespace or not k.namespaced or ns == namespace)
                 and labels_ok(o["metadata"].get("labels")) and fields_ok(o)]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def _remove_object(self, k: Kind, obj: dict, *, cascade: bool) -> None:
        meta = obj["metadata"]
        self._objects.pop(self._key(k, meta["name"], meta.get("namespace")), None)
        if k.kind == "Pod":
            self._logs.pop((meta.get("namespace", ""), meta["name"]), None)
        if k.kind == "Namespace":
            for key, child in list(self._objects.items()):
                if key[2] == meta["name"]:
                    self._remove_object(self._kind(child["apiVersion"], child["kind"]), child, cascade=False)
        if k.kind == "CustomResourceDefinition":
            group = obj.get("spec", {}).get("group")
            plural = obj.get("spec", {}).get("names", {}).get("plural")
            gone = [kd for kd in self._kinds if kd.custom and (kd.group, kd.plural) == (group, plural)]
            self._kinds = [kd for kd in self._kinds if kd not in gone]
            for key in [key for key in self._objects if any((key[0], key[1]) == (g.group, g.kind) for g in gone)]:
                self._objects.pop(key)
        if cascade:  # a garbage collector in one step: dependents go with their owner
            for child in list(self._objects.values()):
                if any(ref.get("uid") == meta.get("uid") for ref in child["metadata"].get("ownerReferences", [])):
                    self._remove_object(self._kind(child["apiVersion"], child["kind"]), child, cascade=True)

    def _check_namespace(self, k: Kind, namespace: str | None, name: str) -> None:
        if not k.namespaced:
            return
        ns = self._objects.get(("", "Namespace", "", namespace or ""))
        if ns is None:
            raise ApiError(404, f'namespaces "{namespace}" not found',
                           details={"name": namespace, "kind": "namespaces"})
        if ns.get("status", {}).get("phase") == "Terminating":
            raise ApiError(403, f"{k.resource_ref} \"{name}\" is forbidden: unable to create new content in "
                                f"namespace {namespace} because it is being terminated",
                           details={"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                                "message": f"namespace {namespace} is being terminated"}]})

    def _write(self, k: Kind, old: dict | None, new: dict, *, dry_run: bool) -> dict:
        """The one path every API write takes: admission, generation, status, storage."""
        meta = new.setdefault("metadata", {})
        if old is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=FAKE_NOW, generation=1)
            if k.kind == "Namespace":
                new.setdefault("spec", {"finalizers": ["kubernetes"]})
                new.setdefault("status", {"phase": "Active"})
        else:
            for key in ("uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            if k.kind == "Job" and new.get("spec", {}).get("template") != old.get("spec", {}).get("template"):
                raise ApiError(422, f'Job.batch "{meta["name"]}" is invalid: spec.template: Invalid value: '
                                    f'core.PodTemplateSpec{{...}}: field is immutable',
                               details={"name": meta["name"], "group": "batch", "kind": "Job", "causes": [
                                   {"reason": "FieldValueInvalid", "field": "spec.template",
                                    "message": "Invalid value: core.PodTemplateSpec{...}: field is immutable"}]})
            strip = lambda o: {key: v for key, v in o.items() if key not in ("metadata", "status")}  # noqa: E731
            if strip(new) != strip(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        quota_failure = self._quota_failure(k, new)
        if self.auto_ready:
            self._make_ready(k, new, quota_failure)
        if old is not None and new == old:
            return copy.deepcopy(old)  # a no-op write keeps its resourceVersion, like the real server
        if dry_run:
            meta.setdefault("resourceVersion", old["metadata"]["resourceVersion"] if old else "0")
            return new
        meta["resourceVersion"] = self._next_rv()
        self._objects[self._key(k, meta["name"], meta.get("namespace"))] = new
        if k.kind == "CustomResourceDefinition":
            self._register_from_crd(new)
        if self.auto_ready and k.kind == "Job" and old is None:
            self._spawn_job_pod(new)
        if quota_failure:
            self._report_quota_failure(new, quota_failure)
        return copy.deepcopy(new)

    def _quota_failure(self, k: Kind, obj: dict) -> str | None:
        if not self.quota_enforcement or k.kind not in ("Deployment", "StatefulSet"):
            return None
        ns = obj["metadata"].get("namespace", "")
        pod_spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        limit_ranges = [o for (g, kd, n, _), o in self._objects.items() if kd == "LimitRange" and n == ns]
        for (g, kd, n, name), quota in sorted(self._objects.items()):
            if kd == "ResourceQuota" and n == ns:
                missing = _quota_missing(pod_spec, quota.get("spec", {}).get("hard", {}), limit_ranges)
                if missing:
                    text = "; ".join(f"{res} for: {','.join(names)}" for res, names in missing.items())
                    return f"failed quota: {name}: must specify {text}"
        return None

    def _replica_set_name(self, obj: dict) -> str:
        template = json.dumps(obj.get("spec", {}).get("template", {}), sort_keys=True)
        return f"{obj['metadata']['name']}-{hashlib.sha1(template.encode()).hexdigest()[:10]}"

    def _report_quota_failure(self, obj: dict, failure: str) -> None:
        meta = obj["metadata"]
        rs_name = self._replica_set_name(obj)
        template = obj.get("spec", {}).get("template", {})
        if obj["kind"] == "Deployment" and ("apps", "ReplicaSet", meta["namespace"], rs_name) not in self._objects:
            self.put({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": rs_name, "namespace": meta["namespace"], "labels": template.get("metadata", {}).get("labels", {}),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1), "template": template},
                "status": {"replicas": 0}})
        owner = ("ReplicaSet", rs_name) if obj["kind"] == "Deployment" else (obj["kind"], meta["name"])
        pod_name = f"{rs_name}-" if obj["kind"] == "Deployment" else f"{meta['name']}-0"
        self.add_event(meta["namespace"], involved_kind=owner[0], involved_name=owner[1], reason="FailedCreate",
                       message=f'Error creating: pods "{pod_name}" is forbidden: {failure}')

    def _make_ready(self, k: Kind, obj: dict, quota_failure: str | None) -> None:
        """What controllers would eventually report, reported at once."""
        spec, gen = obj.get("spec", {}), obj["metadata"].get("generation", 1)
        ok = {"status": "True", "lastTransitionTime": FAKE_NOW}
        if k.kind in ("Deployment", "StatefulSet"):
            want = spec.get("replicas", 1)
            ready = 0 if quota_failure else want
            status: dict[str, Any] = {"observedGeneration": gen, "replicas": ready, "updatedReplicas": ready,
                                      "readyReplicas": ready, "availableReplicas": ready}
            if k.kind == "StatefulSet":
                status.update(currentReplicas=ready, currentRevision=f"{obj['metadata']['name']}-1",
                              updateRevision=f"{obj['metadata']['name']}-1")
            else:
                status["conditions"] = [
                    {"type": "Available", **ok, "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."},
                    {"type": "Progressing", **ok, "reason": "NewReplicaSetAvailable",
                     "message": f'ReplicaSet "{self._replica_set_name(obj)}" has successfully progressed.'}]
                if quota_failure:
                    status["unavailableReplicas"] = want
                    status["conditions"] = [
                        {"type": "Available", "status": "False", "lastTransitionTime": FAKE_NOW,
                         "reason": "MinimumReplicasUnavailable",
                         "message": "Deployment does not have minimum availability."},
                        {"type": "ReplicaFailure", **ok, "reason": "FailedCreate",
                         "message": f'pods "{self._replica_set_name(obj)}-" is forbidden: {quota_failure}'}]
            obj["status"] = status
        elif k.kind == "Job":
            obj["status"] = {"succeeded": 1, "active": 0, "startTime": FAKE_NOW, "completionTime": FAKE_NOW,
                             "conditions": [{"type": "SuccessCriteriaMet", **ok}, {"type": "Complete", **ok}]}
        elif k.kind == "CustomResourceDefinition":
            obj["status"] = {"conditions": [{"type": "NamesAccepted", **ok}, {"type": "Established", **ok}],
                             "acceptedNames": spec.get("names", {})}
        elif k.kind == "Gateway":
            obj["status"] = {"conditions": [{"type": t, **ok, "reason": t, "observedGeneration": gen}
                                            for t in ("Accepted", "Programmed")]}
            if self.gateway_address:
                obj["status"]["addresses"] = [{"type": "IPAddress", "value": self.gateway_address}]
        elif k.kind == "HTTPRoute":
            obj["status"] = {"parents": [
                {"parentRef": ref, "controllerName": "fake-kube/gateway-controller",
                 "conditions": [{"type": t, **ok, "reason": t, "observedGeneration": gen}
                                for t in ("Accepted", "ResolvedRefs")]}
                for ref in spec.get("parentRefs", [])]}
        elif k.kind in ("Certificate", "Issuer", "ClusterIssuer", "ExternalSecret"):
            obj["status"] = {"conditions": [{"type": "Ready", **ok, "reason": "Ready", "observedGeneration": gen}]}
        elif k.kind == "PersistentVolumeClaim":
            obj["status"] = {"phase": "Bound"}

    def _spawn_job_pod(self, job: dict) -> None:
        meta = job["metadata"]
        suffix = hashlib.sha1(meta["uid"].encode()).hexdigest()[:5]
        labels = {**job.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}),
                  "job-name": meta["name"], "batch.kubernetes.io/job-name": meta["name"],
                  "controller-uid": meta["uid"], "batch.kubernetes.io/controller-uid": meta["uid"]}
        containers = job.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        statuses = [{"name": c.get("name", "main"), "ready": False, "restartCount": 0, "image": c.get("image", ""),
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}} for c in containers]
        self.add_pod(meta["namespace"], f"{meta['name']}-{suffix}", labels=labels, owner_kind="Job",
                     owner_name=meta["name"], container_statuses=statuses, phase="Succeeded")

    # ------------------------------------------------------------ API operations
    def _apply(self, k: Kind, name: str, namespace: str | None, body: dict, query: dict[str, str]) -> dict:
        manager = query.get("fieldManager")
        if not manager:
            raise ApiError(400, "PATCH /apply requires fieldManager to be set")
        self._check_body_identity(k, name, namespace, body)
        old = self._objects.get(self._key(k, name, namespace))
        if old is None:
            self._check_namespace(k, namespace, name)
        live = copy.deepcopy(old) if old else {"apiVersion": k.api_version, "kind": k.kind,
                                               "metadata": {"name": name}}
        if k.namespaced:
            live["metadata"]["namespace"] = namespace
        try:
            conflicts = apply_fields(live, body, manager, k.api_version,
                                     force=query.get("force", "").lower() == "true", schema=self._schema(k))
        except quantity.QuantityError as exc:
            raise _undecodable(k, exc) from None
        if conflicts:
            raise _conflict_error(k, name, conflicts)
        return self._write(k, old, live, dry_run=query.get("dryRun") == "All")

    def _check_body_identity(self, k: Kind, name: str | None, namespace: str | None, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was in an unknown format")
        meta = body.get("metadata") or {}
        if name is not None and meta.get("name") not in (None, name):
            raise ApiError(400, "the name of the object does not match the name on the URL")
        if k.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on "
                                "the request")
        if body.get("kind") not in (None, k.kind):
            raise ApiError(400, f'{k.kind} in version "{k.version}" cannot be handled as a {body.get("kind")}')

    def _manager(self, query: dict[str, str], headers: dict[str, str]) -> str:
        return query.get("fieldManager") or headers.get("user-agent", "unknown").split("/")[0] or "unknown"

    def _create(self, k: Kind, namespace: str | None, body: Any, query: dict[str, str],
                headers: dict[str, str]) -> dict:
        self._check_body_identity(k, None, namespace, body)
        name = (body.get("metadata") or {}).get("name")
        if not name and (body.get("metadata") or {}).get("generateName"):
            name = body["metadata"]["generateName"] + uuid.uuid4().hex[:5]
        if not name:
            raise ApiError(422, f"{k.kind} \"\" is invalid: metadata.name: Required value: name or generateName "
                                "is required")
        if self._key(k, name, namespace) in self._objects:
            raise ApiError(409, f'{k.resource_ref} "{name}" already exists', reason="AlreadyExists",
                           details={"name": name, "group": k.group, "kind": k.plural})
        self._check_namespace(k, namespace, name)
        new = copy.deepcopy(body)
        new.update(apiVersion=k.api_version, kind=k.kind)
        new["metadata"]["name"] = name
        if k.namespaced:
            new["metadata"]["namespace"] = namespace
        new = self._canonical(k, new)
        record_update(k.api_version, None, new, self._manager(query, headers), self._schema(k))
        return self._write(k, None, new, dry_run=query.get("dryRun") == "All")

    def _replace(self, k: Kind, name: str, namespace: str | None, body: Any, query: dict[str, str],
                 headers: dict[str, str], subresource: str | None) -> dict:
        self._check_body_identity(k, name, namespace, body)
        old = self._existing(k, name, namespace)
        want_rv = (body.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, f'Operation cannot be fulfilled on {k.resource_ref} "{name}": the object has been '
                                "modified; please apply your changes to the latest version and try again",
                           details={"name": name, "group": k.group, "kind": k.plural})
        if subresource == "finalize":
            new = copy.deepcopy(old)
            new["spec"] = {"finalizers": list((body.get("spec") or {}).get("finalizers") or [])}
            if not new["spec"]["finalizers"] and new.get("status", {}).get("phase") == "Terminating":
                self._remove_object(k, old, cascade=True)
                return new
            return self._write(k, old, new, dry_run=False)
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(body.get("status", {}))
            return self._store_status(k, new)
        new = copy.deepcopy(body)
        new.update(apiVersion=k.api_version, kind=k.kind)
        new.setdefault("metadata", {})["name"] = name
        if k.namespaced:
            new["metadata"]["namespace"] = namespace
        new["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
        if "status" in old:
            new["status"] = old["status"]  # the main resource ignores status, as real PUTs do
        new = self._canonical(k, new)
        record_update(k.api_version, old, new, self._manager(query, headers), self._schema(k))
        return self._write(k, old, new, dry_run=query.get("dryRun") == "All")

    def _canonical(self, k: Kind, obj: dict) -> dict:
        """Quantities as the server stores them (built-in kinds only; a CRD's are plain strings)."""
        try:
            return obj if k.custom else canonicalize(obj, self._schema(k))
        except quantity.QuantityError as exc:
            raise _undecodable(k, exc) from None

    def _store_status(self, k: Kind, new: dict) -> dict:
        new["metadata"]["resourceVersion"] = self._next_rv()
        meta = new["metadata"]
        self._objects[self._key(k, meta["name"], meta.get("namespace"))] = new
        return copy.deepcopy(new)

    def _patch(self, k: Kind, name: str, namespace: str | None, body: Any, content_type: str,
               query: dict[str, str], headers: dict[str, str], subresource: str | None) -> dict:
        if content_type == "application/apply-patch+yaml":
            return self._apply(k, name, namespace, body, query)
        old = self._existing(k, name, namespace)
        new = copy.deepcopy(old)
        if content_type == "application/json-patch+json":
            new = _json_patch(new, body)
        elif content_type == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise ApiError(400, "the body of the request was in an unknown format")
            _merge(new, body)
        elif content_type == "application/strategic-merge-patch+json" and not k.custom:
            if not isinstance(body, dict):
                raise ApiError(400, "the body of the request was in an unknown format")
            new = strategic_merge(new, body, self._schema(k))
        else:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types "
                                "include: application/json-patch+json, application/merge-patch+json, "
                                "application/apply-patch+yaml, application/strategic-merge-patch+json")
        if subresource == "status":
            old_status = copy.deepcopy(new.get("status"))
            new = copy.deepcopy(old)
            new["status"] = old_status
            return self._store_status(k, new)
        new["metadata"].update(name=name, **({"namespace": namespace} if k.namespaced else {}))
        if "status" in old:
            new["status"] = old["status"]
        new = self._canonical(k, new)
        record_update(k.api_version, old, new, self._manager(query, headers), self._schema(k))
        return self._write(k, old, new, dry_run=query.get("dryRun") == "All")

    def _existing(self, k: Kind, name: str, namespace: str | None) -> dict:
        obj = self._objects.get(self._key(k, name, namespace))
        if obj is None:
            raise ApiError(404, f'{k.resource_ref} "{name}" not found',
                           details={"name": name, "group": k.group, "kind": k.plural})
        return obj

    def _delete(self, k: Kind, name: str, namespace: str | None, body: Any, query: dict[str, str]) -> dict:
        obj = self._existing(k, name, namespace)
        options = body if isinstance(body, dict) else {}
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):  # DeleteOptions.preconditions
            want, have = (options.get("preconditions") or {}).get(field), obj["metadata"].get(field)
            if want and want != have:  # the apiserver's wording
                raise ApiError(409, f"Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}",
                               details={"name": name, "group": k.group, "kind": k.plural})
        dry_run = query.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        if dry_run:
            return copy.deepcopy(obj)
        if k.kind == "Namespace":
            gone = copy.deepcopy(obj)
            gone.setdefault("status", {})["phase"] = "Terminating"
            gone["metadata"]["deletionTimestamp"] = FAKE_NOW
            if name in self.stuck_namespaces:
                gone["spec"] = {"finalizers": ["kubernetes"]}
                gone["metadata"]["resourceVersion"] = self._next_rv()
                self._objects[self._key(k, name, None)] = gone
            else:
                self._remove_object(k, obj, cascade=True)
            return gone
        self._remove_object(k, obj, cascade=policy != "Orphan")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": k.group, "kind": k.plural, "uid": obj["metadata"]["uid"]}}

    def _list_body(self, k: Kind, items: list[dict]) -> dict:
        if not k.custom:  # the real server omits apiVersion/kind on built-in list items
            items = [{key: v for key, v in o.items() if key not in ("apiVersion", "kind")} for o in items]
        return {"kind": f"{k.kind}List", "apiVersion": k.api_version,
                "metadata": {"resourceVersion": str(self._rv)}, "items": copy.deepcopy(items)}

    # ------------------------------------------------------------ discovery
    def _discovery(self, parts: list[str]) -> dict | None:
        if parts == ["version"]:
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "gitCommit": "fake",
                    "gitTreeState": "clean", "buildDate": FAKE_NOW, "goVersion": "go1.23", "compiler": "gc",
                    "platform": "linux/amd64"}
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for k in self._kinds:
                if k.group and k.version not in groups.setdefault(k.group, []):
                    groups[k.group].append(k.version)
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                for g, vs in groups.items()]}
        if len(parts) == 2 and parts[0] == "apis":
            group_doc = next((g for g in self._discovery(["apis"])["groups"] if g["name"] == parts[1]), None)
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc} if group_doc else None
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            kinds = [k for k in self._kinds if (k.group, k.version) == (group, version)]
            if not kinds:
                return None
            resources = []
            for k in kinds:
                verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
                entry = {"name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced,
                         "kind": k.kind, "verbs": verbs}
                if k.short_names:
                    entry["shortNames"] = list(k.short_names)
                resources.append(entry)
                for sub in _SUBRESOURCES.get(k.plural, ("status",)):
                    resources.append({"name": f"{k.plural}/{sub}", "singularName": "", "namespaced": k.namespaced,
                                      "kind": k.kind, "verbs": ["get"] if sub == "log" else ["get", "patch", "update"]})
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": kinds[0].api_version,
                    "resources": resources}
        return None

    # ------------------------------------------------------------ routing
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
               ) -> tuple[int, str, bytes, dict[str, str]]:
        """Serve one request; returns (status, content type, body, extra headers)."""
        split = urlsplit(raw_path)
        path, query_lists = split.path, parse_qs(split.query, keep_blank_values=True)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        body: Any = None
        parse_error = False
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                try:
                    body = yaml.safe_load(raw_body)
                except yaml.YAMLError:
                    parse_error = True
        with self._lock:
            self.requests.append(Request(method, path, query_lists, content_type, body, dict(headers)))
        if self.latency > 0:
            self._stopping.wait(self.latency)
        fault = self._take_fault(method, path)
        if fault and fault.delay > 0:
            self._stopping.wait(fault.delay)
        if fault and fault.status >= 400:
            error = ApiError(fault.status, (fault.body or {}).get("message") or f"fake fault ({fault.status})",
                             headers={"Retry-After": "0"} if fault.status == 429 else None)
            payload = fault.body or error.status()
            return fault.status, "application/json", json.dumps(payload).encode(), {**error.headers,
                                                                                   **(fault.headers or {})}
        query = {k: v[-1] for k, v in query_lists.items()}
        try:
            if parse_error:
                raise ApiError(400, "the body of the request was in an unknown format")
            with self._lock:
                result = self._route(method, path, query, content_type, body, headers)
        except ApiError as error:
            return error.code, "application/json", json.dumps(error.status()).encode(), error.headers
        if isinstance(result, str):
            return 200, "text/plain", result.encode(), {}
        status = 201 if method == "POST" else 200
        if method == "GET" and "as=Table" in headers.get("accept", "") and result.get("kind", "").endswith("List"):
            result = _as_table(result)
        elif method == "GET" and "as=Table" in headers.get("accept", "") and "metadata" in result \
                and result.get("kind") not in ("APIResourceList", "APIGroupList", "APIVersions", "Status"):
            result = _as_table({"items": [result], "metadata": {"resourceVersion": str(self._rv)}})
        return status, "application/json", json.dumps(result).encode(), {}

    def _route(self, method: str, path: str, query: dict[str, str], content_type: str, body: Any,
               headers: dict[str, str]) -> dict | str:
        parts = [p for p in path.split("/") if p]
        if method == "GET" and (doc := self._discovery(parts)) is not None:
            return doc
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3
                                                             and rest[2] in ("finalize", "status")):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        plural, name, sub = (rest + [None, None])[:3]
        k = self._kind_by_plural(group, version, plural)
        if k is None or (namespace is not None and not k.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        if sub is not None and sub not in _SUBRESOURCES.get(k.plural, ("status",)):
            raise ApiError(404, "the server could not find the requested resource")
        if name is None:
            if method == "GET":
                items = self._select(k, namespace, query.get("labelSelector"), query.get("fieldSelector"))
                return self._list_body(k, items)
            if method == "POST":
                return self._create(k, namespace if k.namespaced else None, body, query, headers)
            if method == "DELETE":
                items = self._select(k, namespace, query.get("labelSelector"), query.get("fieldSelector"))
                for obj in items:
                    self._remove_object(k, obj, cascade=query.get("propagationPolicy") != "Orphan")
                return self._list_body(k, items)
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if k.namespaced and namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        if method == "GET" and sub == "log":
            self._existing(k, name, namespace)
            text = self._logs.get((namespace or "", name), "")
            tail = query.get("tailLines")
            if tail is not None and tail.isdigit():
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-int(tail):]) if int(tail) else ""
            return text
        if method == "GET":
            return copy.deepcopy(self._existing(k, name, namespace))
        if method == "PUT":
            return self._replace(k, name, namespace, body, query, headers, sub)
        if method == "PATCH":
            return self._patch(k, name, namespace, body, content_type, query, headers, sub)
        if method == "DELETE" and sub is None:
            return self._delete(k, name, namespace, body, query)
        raise ApiError(405, "the server does not allow this method on the requested resource")


def _json_patch(obj: dict, ops: Any) -> dict:
    """RFC 6902 add/replace/remove/test, enough for annotation edits."""
    if not isinstance(ops, list):
        raise ApiError(400, "the body of the request was in an unknown format")
    for op in ops:
        keys = [p.replace("~1", "/").replace("~0", "~") for p in op.get("path", "").split("/")[1:]]
        parent = obj
        for key in keys[:-1]:
            parent = parent[int(key)] if isinstance(parent, list) else parent.setdefault(key, {})
        last = keys[-1] if keys else ""
        kind = op.get("op")
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op.get("value"))
            else:
                parent[last] = copy.deepcopy(op.get("value"))
        elif kind == "remove":
            try:
                del parent[int(last) if isinstance(parent, list) else last]
            except (KeyError, IndexError) as exc:
                raise ApiError(422, f"the server rejected our request: remove {op['path']}: missing") from exc
        elif kind == "test" and _lookup(obj, tuple(keys)) != op.get("value"):
            raise ApiError(422, f"the server rejected our request: test failed at {op['path']}")
    return obj


def _as_table(listing: dict) -> dict:
    """The Table kubectl get asks for; name and age columns are enough to print."""
    rows = []
    for item in listing.get("items", []):
        meta = item.get("metadata", {})
        rows.append({"cells": [meta.get("name"), meta.get("creationTimestamp", "")],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": listing.get("metadata", {}).get("resourceVersion", "")},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
                {"name": "Created At", "type": "date", "format": "", "description": "Creation time",
                 "priority": 0}],
            "rows": rows}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; without this each costs 40 ms
    server_fake: FakeKube

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server_fake._lock:
            self.server_fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server_fake._lock:
            self.server_fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, ctype, payload, extra = self.server_fake.handle(self.command, self.path, headers, raw)
        except Exception as exc:  # a bug in the fake must surface as a 500, not a hung client
            status, ctype, extra = 500, "application/json", {}
            payload = json.dumps(ApiError(500, f"fake-kube internal error: {exc!r}").status()).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in extra.items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout tests)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    """A started FakeKube for one test."""
    server = FakeKube().start()
    try:
        yield server
    finally:
        server.stop()
