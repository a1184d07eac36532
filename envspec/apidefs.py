"""What the upstream Kubernetes definitions say about a field: list type, keys, patch strategy, quantity.

Server-side apply and strategic merge patch do not treat every list alike: `containers` is a map
keyed by `name`, `ports` by `containerPort` and `protocol`, `finalizers` a set, `args` atomic; a
`resources.limits` value is a `Quantity` the server canonicalises. That knowledge lives in the
OpenAPI extensions (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`,
`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`) of the definitions
`kubernetes-validate` ships, so it is read from there rather than kept in a hand list. Kinds without
a built-in definition (custom resources) are "deduced" like a server without a schema: maps are
granular, lists atomic; `TypeInfo.from_openapi` reads a CRD's own `openAPIV3Schema` when one is at hand.

Strategic-merge patches (compile), envspec's change detection (deploy) and the fake API server in
tests all read this module; it sits beside the compiler because the deployer may import the
compiler, never the reverse. It only locates kubernetes-validate's files: importing that package is slow.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

QUANTITY_REF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Map-key fields with a server default: the OpenAPI documents carry `default`, the JSON Schema
# conversion kubernetes-validate ships drops it, and server-side apply keys list items by it.
KEY_DEFAULTS = {"protocol": "TCP"}


def _schema_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")  # locating only: importing it is slow
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kubernetes-validate is not installed; it ships the Kubernetes definitions")
    return Path(list(spec.submodule_search_locations)[0]) / "kubernetes-json-schema"


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name)[:3])


@lru_cache(maxsize=4)
def definitions(version: str | None = None) -> dict[str, Any]:
    """The `$defs` of one shipped version (`1.32`, `v1.32.0`), or the newest shipped one."""
    root = _schema_root()
    shipped = sorted((p for p in root.glob("v*-local") if (p / "_definitions.json").is_file()),
                     key=lambda p: _version_key(p.name))
    chosen = shipped[-1]
    if version:
        want = _version_key(version)[:2]
        chosen = next((p for p in reversed(shipped) if _version_key(p.name)[:2] == want), chosen)
    doc = json.loads((chosen / "_definitions.json").read_text(encoding="utf-8"))
    return doc.get("$defs") or doc.get("definitions") or {}


@lru_cache(maxsize=4)
def _kinds(version: str | None) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, node in definitions(version).items():
        for gvk in node.get("x-kubernetes-group-version-kind") or []:
            out.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return out


class TypeInfo:
    """One node of a schema; an unknown node (no schema) behaves as the server's deduced type."""

    __slots__ = ("node", "defs", "ref")

    def __init__(self, node: dict[str, Any] | None, defs: dict[str, Any] | None = None, ref: str = ""):
        self.defs = defs or {}
        self.ref = ref
        node = dict(node or {})
        while "$ref" in node:  # the referencing node's extensions win over the target's
            ref = node.pop("$ref").rsplit("/", 1)[-1]
            self.ref = ref
            node = {**self.defs.get(ref, {}), **node}
        self.node = node

    @classmethod
    def from_openapi(cls, schema: dict[str, Any] | None) -> "TypeInfo":
        """A CRD's `openAPIV3Schema` (inline, no references)."""
        return cls(schema)

    @property
    def known(self) -> bool:
        return bool(self.node)

    def _types(self) -> set[str]:
        kind = self.node.get("type")
        return set(kind) if isinstance(kind, list) else {kind} if kind else set()

    def field(self, name: str) -> "TypeInfo":
        props = self.node.get("properties") or {}
        if name in props:
            return TypeInfo(props[name], self.defs)
        extra = self.node.get("additionalProperties")
        return TypeInfo(extra if isinstance(extra, dict) else None, self.defs)

    def item(self) -> "TypeInfo":
        items = self.node.get("items")
        return TypeInfo(items if isinstance(items, dict) else None, self.defs)

    @property
    def list_type(self) -> str:
        """`atomic`, `set` or `map`; lists default to atomic, as upstream says."""
        return str(self.node.get("x-kubernetes-list-type") or "atomic")

    @property
    def map_keys(self) -> tuple[str, ...]:
        keys = self.node.get("x-kubernetes-list-map-keys")
        if keys:
            return tuple(keys)
        merge_key = self.patch_merge_key
        return (merge_key,) if self.list_type == "map" and merge_key else ()

    @property
    def map_atomic(self) -> bool:
        """A map (e.g. a LabelSelector) that server-side apply treats as one value."""
        return self.node.get("x-kubernetes-map-type") == "atomic"

    @property
    def patch_strategy(self) -> tuple[str, ...]:
        return tuple(s for s in str(self.node.get("x-kubernetes-patch-strategy") or "").split(",") if s)

    @property
    def patch_merge_key(self) -> str | None:
        key = self.node.get("x-kubernetes-patch-merge-key")
        return str(key) if key else None

    @property
    def is_quantity(self) -> bool:
        return self.ref == QUANTITY_REF


def type_of(api_version: str, kind: str, version: str | None = None) -> TypeInfo:
    """The schema of a built-in kind, or an unknown (deduced) type for anything else."""
    group, _, ver = api_version.rpartition("/")
    name = _kinds(version).get((group, ver, kind))
    defs = definitions(version)
    return TypeInfo(defs.get(name) if name else None, defs)
