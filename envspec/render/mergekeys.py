"""Which lists of a built-in Kubernetes object merge by key, read from the upstream OpenAPI definitions.

Strategic-merge patches merge `containers` by `name` and `ports` by `containerPort`;
those facts are in the `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`
extensions of the definitions kubernetes-validate ships, so this module reads them
there instead of keeping its own copy. Custom resources have no such extensions:
their lists are replaced, as `kubectl patch` does for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DEFS_PREFIX = "#/$defs/"


@dataclass(frozen=True)
class ListStrategy:
    """How a list field merges: `merge_key` None with `merge` True means a set of scalars."""

    merge: bool
    merge_key: str | None


@lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    from importlib import resources

    root = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    versions = sorted(
        (p.name for p in root.iterdir() if p.name.endswith("-local")),
        key=lambda name: tuple(int(x) for x in name[1:].split("-")[0].split(".")),
    )
    text = root.joinpath(versions[-1], "_definitions.json").read_text(encoding="utf-8")
    return json.loads(text)["$defs"]


@lru_cache(maxsize=1)
def _by_kind() -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for name, definition in _definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            group = gvk.get("group") or ""
            api_version = f"{group}/{gvk['version']}" if group else gvk["version"]
            out[(api_version, gvk["kind"])] = name
    return out


class SchemaNode:
    """A position in a kind's schema; `child`/`item` walk down, following $refs."""

    def __init__(self, schema: dict[str, Any] | None):
        self.schema = _deref(schema or {})

    def child(self, key: str) -> "SchemaNode":
        props = self.schema.get("properties") or {}
        if key in props:
            return SchemaNode(props[key])
        extra = self.schema.get("additionalProperties")
        return SchemaNode(extra if isinstance(extra, dict) else None)

    def item(self) -> "SchemaNode":
        items = self.schema.get("items")
        return SchemaNode(items if isinstance(items, dict) else None)

    def list_strategy(self) -> ListStrategy:
        strategy = str(self.schema.get("x-kubernetes-patch-strategy") or "")
        return ListStrategy("merge" in strategy.split(","), self.schema.get("x-kubernetes-patch-merge-key"))


def _deref(schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = str(schema["$ref"])
        merged = {k: v for k, v in schema.items() if k != "$ref"}
        target = _definitions().get(ref[len(DEFS_PREFIX):], {}) if ref.startswith(DEFS_PREFIX) else {}
        schema = {**target, **merged}
        seen += 1
    for combinator in ("allOf", "oneOf", "anyOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and len(options) == 1 and isinstance(options[0], dict) and "properties" not in schema:
            schema = {**_deref(options[0]), **{k: v for k, v in schema.items() if k != combinator}}
    return schema


def root_schema(api_version: str, kind: str) -> SchemaNode:
    """The schema of a built-in kind, or an empty node (lists replace) for anything else."""
    name = _by_kind().get((api_version, kind))
    return SchemaNode(_definitions()[name] if name else None)
