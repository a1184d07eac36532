"""Stage 5b: an environment's `patches:` applied to the rendered objects.

The escape hatch for anything the components do not model (affinity,
tolerations, an extra sidecar): a strategic-merge patch (lists merge by the
merge keys in the upstream Kubernetes definitions) or JSON Patch (RFC 6902)
operations, applied to every object its target selects. Patches run before
labels, rules and schema validation, so a patched object is checked like any
other. A patch whose target selects nothing is an error: it would otherwise be
a silent no-op after a rename.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from envspec.errors import Location, Problems
from envspec.apidefs import TypeInfo, type_of
from envspec.render.templates import RenderedObject
from envspec.spec.models import JsonOp, Patch, PatchTarget

SpecPath = tuple[str | int, ...]
DIRECTIVE = "$patch"


class PatchError(Exception):
    """A patch that cannot be applied; `path` is where inside the patch (spec path suffix)."""

    def __init__(self, message: str, path: SpecPath = ()):
        super().__init__(message)
        self.path = path


def matches(target: PatchTarget, obj: dict[str, Any], labels: dict[str, str]) -> bool:
    """`labels` are envspec's own labels, which normalisation adds later but targets may use."""
    meta = obj.get("metadata") or {}
    if target.kind is not None and obj.get("kind") != target.kind:
        return False
    if target.apiVersion is not None and obj.get("apiVersion") != target.apiVersion:
        return False
    if target.name is not None and meta.get("name") != target.name:
        return False
    if target.namespace is not None and meta.get("namespace") != target.namespace:
        return False
    have = {**(meta.get("labels") or {}), **labels}
    return all(have.get(k) == v for k, v in target.labels.items())


# ---------------------------------------------------------------- strategic merge


def strategic_merge(live: Any, patch: Any, schema: TypeInfo, path: SpecPath = ()) -> Any:
    """Kubernetes' strategic merge for one value: maps merge, `null` deletes, lists follow their strategy.

    Supported directives: `$patch: replace` and `$patch: delete` on a map or list item.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get(DIRECTIVE)
    if directive is not None and directive not in ("replace", "delete"):
        raise PatchError(f"unsupported {DIRECTIVE}: {directive!r} (replace or delete)", path + (DIRECTIVE,))
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != DIRECTIVE}
    for key in patch:
        if isinstance(key, str) and key.startswith("$") and key != DIRECTIVE:
            raise PatchError(f"unsupported directive {key!r}", path + (key,))
    out = dict(live) if isinstance(live, dict) else {}
    for key, value in patch.items():
        if key == DIRECTIVE:
            continue
        child = schema.field(str(key))
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, child, path + (key,))
        elif isinstance(value, dict) and value.get(DIRECTIVE) == "delete":
            out.pop(key, None)
        else:
            out[key] = strategic_merge(out.get(key), value, child, path + (key,))
    return out


def _merge_list(live: Any, patch: list[Any], schema: TypeInfo, path: SpecPath) -> list[Any]:
    """Lists merge only where the definitions say `x-kubernetes-patch-strategy: merge` (custom resources: never)."""
    current = list(live) if isinstance(live, list) else []
    if "merge" not in schema.patch_strategy:
        return copy.deepcopy(patch)
    key = schema.patch_merge_key
    if key is None:  # a set of scalars (finalizers and the like): union, in order
        out = list(current)
        for item in patch:
            if item not in out:
                out.append(copy.deepcopy(item))
        return out
    out = list(current)
    for index, item in enumerate(patch):
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"each item of this list needs its merge key {key!r}", path + (index,))
        position = next((i for i, have in enumerate(out) if isinstance(have, dict) and have.get(key) == item[key]), None)
        if item.get(DIRECTIVE) == "delete":
            if position is not None:
                out.pop(position)
            continue
        if position is None:
            out.append(strategic_merge({}, item, schema.item(), path + (index,)))
        else:
            out[position] = strategic_merge(out[position], item, schema.item(), path + (index,))
    return out


# ---------------------------------------------------------------- JSON Patch (RFC 6902)


def _pointer(text: str, where: SpecPath) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"a JSON pointer starts with '/' (got {text!r})", where)
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _container(doc: Any, parts: list[str], where: SpecPath) -> tuple[Any, str]:
    node = doc
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"path /{'/'.join(parts[: depth + 1])} does not exist", where)
    return node, parts[-1]


def _get(doc: Any, parts: list[str], where: SpecPath) -> Any:
    if not parts:
        return doc
    parent, last = _container(doc, parts, where)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"path /{'/'.join(parts)} does not exist", where)


def _remove(doc: Any, parts: list[str], where: SpecPath) -> Any:
    parent, last = _container(doc, parts, where)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"path /{'/'.join(parts)} does not exist", where)


def _add(doc: Any, parts: list[str], value: Any, where: SpecPath, replace: bool = False) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent, last = _container(doc, parts, where)
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"path /{'/'.join(parts)} does not exist", where)
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) < len(parent) + (0 if replace else 1):
            if replace:
                parent[int(last)] = copy.deepcopy(value)
            else:
                parent.insert(int(last), copy.deepcopy(value))
        else:
            raise PatchError(f"index {last!r} is out of range at /{'/'.join(parts[:-1])}", where)
    else:
        raise PatchError(f"/{'/'.join(parts[:-1])} is not an object or array", where)
    return doc


def json_patch(doc: dict[str, Any], ops: list[JsonOp]) -> dict[str, Any]:
    out: Any = copy.deepcopy(doc)
    for index, op in enumerate(ops):
        where: SpecPath = (index, "path")
        parts = _pointer(op.path, where)
        if op.op == "add":
            out = _add(out, parts, op.value, where)
        elif op.op == "replace":
            out = _add(out, parts, op.value, where, replace=True)
        elif op.op == "remove":
            _remove(out, parts, where)
        elif op.op == "test":
            if _get(out, parts, where) != op.value:
                raise PatchError(f"test failed: {op.path} is not {op.value!r}", (index,))
        else:  # move, copy
            source = _pointer(op.from_ or "", (index, "from"))
            value = _remove(out, source, (index, "from")) if op.op == "move" else copy.deepcopy(_get(out, source, (index, "from")))
            out = _add(out, parts, value, where)
    if not isinstance(out, dict):
        raise PatchError("the patched object is no longer a mapping")
    return out


# ---------------------------------------------------------------- the stage


def apply_patches(
    rendered: list[RenderedObject],
    patches: list[Patch],
    labels: dict[str, str],
    problems: Problems,
    locate: Callable[[SpecPath], Location | None],
) -> list[RenderedObject]:
    """Each patch, in order, on every object it targets; problems are located at the patch."""
    from envspec.spec.resolve import dotted

    out = list(rendered)
    for pindex, patch in enumerate(patches):
        base: SpecPath = ("patches", pindex)
        hits = [i for i, r in enumerate(out) if matches(patch.target, r.obj, labels)]
        if not hits:
            problems.error("this patch's target matches no rendered object", locate(base + ("target",)), dotted(base + ("target",)))
            continue
        for i in hits:
            obj = out[i].obj
            try:
                if patch.strategicMerge is not None:
                    new = strategic_merge(obj, patch.strategicMerge, type_of(obj["apiVersion"], obj["kind"]))
                else:
                    new = json_patch(obj, patch.jsonPatch or [])
            except PatchError as exc:
                suffix = ("strategicMerge",) if patch.strategicMerge is not None else ("jsonPatch",)
                where = base + suffix + exc.path
                ident = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
                problems.error(f"{ident}: {exc}", locate(where), dotted(where))
                continue
            meta = new.get("metadata")
            if not isinstance(new.get("kind"), str) or not isinstance(meta, dict) or not meta.get("name"):
                problems.error("the patch removes the object's kind or metadata.name", locate(base), dotted(base))
                continue
            out[i] = RenderedObject(new, out[i].template, out[i].origin, out[i].location)
    return out
