"""Field sets as server-side apply keeps them in `managedFields` (FieldsV1), and value comparison.

A field path is a tuple of FieldsV1 keys: `f:<field>` for a map field, `k:{"name":"web"}` for an
item of a list keyed by its map keys, `v:<json>` for an item of a set. An applied configuration
owns the paths `fieldset` returns: every leaf value, every item of an associative list (the `.`
entry in FieldsV1), and atomic lists and maps as one leaf. `apiVersion`, `kind`, `status` and the
server's bookkeeping in `metadata` belong to nobody.

The owners' FieldsV1 trees on the live object are the server's own word on how it keys a list: a
server that keys the list's items (`k:`) or treats it as a set (`v:`) says so there, which also
covers custom resources, whose schema envspec does not have. Otherwise the upstream definitions
decide (`envspec.apidefs`); without either, a list is atomic, as on a server without a schema.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from envspec import quantity
from envspec.apidefs import KEY_DEFAULTS, TypeInfo

FieldPath = tuple[str, ...]
Tree = dict[str, Any]
OWNERLESS_METADATA = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                                "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"})


def user_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object field managers can own."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in OWNERLESS_METADATA}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


# --- FieldsV1 encoding ---------------------------------------------------------------------


def decode(tree: Any, prefix: FieldPath = ()) -> set[FieldPath]:
    """The paths a FieldsV1 tree holds (`.` marks the node itself as a member)."""
    out: set[FieldPath] = set()
    if not isinstance(tree, dict):
        return out
    for key, sub in tree.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            continue
        path = prefix + (key,)
        if isinstance(sub, dict) and sub:
            out |= decode(sub, path)
        else:
            out.add(path)
    return out


def encode(paths: Iterable[FieldPath]) -> Tree:
    tree: Tree = {}
    members = set(paths)
    for path in sorted(members):
        node = tree
        for key in path:
            node = node.setdefault(key, {})
    def mark(node: Tree, prefix: FieldPath) -> None:
        for key, sub in node.items():
            if key == ".":
                continue
            path = prefix + (key,)
            if sub and path in members:
                sub["."] = {}
            mark(sub, path)
    mark(tree, ())
    return tree


def path_text(path: FieldPath) -> str:
    """A path as the apiserver prints it: `.spec.template.spec.containers[name="web"].image`."""
    out = ""
    for pe in path:
        kind, _, rest = pe.partition(":")
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
        else:
            out += f"[{rest}]"
    return out


def merge_trees(trees: Iterable[Any]) -> Tree:
    """One tree holding every path of `trees` (used as a hint of how the server shapes lists)."""
    out: Tree = {}

    def add(into: Tree, tree: Any) -> None:
        if isinstance(tree, dict):
            for key, sub in tree.items():
                add(into.setdefault(key, {}), sub)

    for tree in trees:
        add(out, tree)
    return out


# --- list shapes and item keys -------------------------------------------------------------


def list_shape(t: TypeInfo, hint: Tree | None) -> tuple[str, tuple[str, ...]]:
    """(`atomic` | `set` | `map`, map keys) for a list.

    A server that recorded the list's items (`k:` / `v:` in the hint) has said how it keys them, and
    that wins: it also covers a cluster whose version keys a list differently from the definitions
    shipped here. Otherwise the schema decides, and without one the list is atomic.
    """
    for key in hint or {}:
        if key.startswith("k:"):
            try:
                return "map", tuple(json.loads(key[2:]))
            except ValueError:
                break
        if key.startswith("v:"):
            return "set", ()
    if t.known:
        return t.list_type, t.map_keys
    return "atomic", ()


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def item_key(item: Any, shape: str, keys: tuple[str, ...]) -> str | None:
    """The FieldsV1 key of one list item, or None when the item has no usable key."""
    if shape == "set":
        return "v:" + _json(item)
    if shape == "map" and isinstance(item, dict):
        values = {}
        for key in keys:
            if key in item:
                values[key] = item[key]
            elif key in KEY_DEFAULTS:
                values[key] = KEY_DEFAULTS[key]
            else:
                return None
        return "k:" + _json(values)
    return None


def _sub(hint: Tree | None, key: str) -> Tree | None:
    sub = (hint or {}).get(key)
    return sub if isinstance(sub, dict) else None


# --- the field set of an applied configuration ---------------------------------------------


def fieldset(value: Any, t: TypeInfo, hint: Tree | None = None, prefix: FieldPath = ()) -> set[FieldPath]:
    """The paths server-side apply records for `value` applied at `prefix`."""
    out: set[FieldPath] = set()
    if isinstance(value, dict):
        if t.map_atomic and prefix:
            return {prefix}
        for key, sub in value.items():
            path = prefix + ("f:" + key,)
            if sub is None or (isinstance(sub, dict) and not sub):
                out.add(path)
            else:
                out |= fieldset(sub, t.field(key), _sub(hint, "f:" + key), path)
        return out
    if isinstance(value, list):
        shape, keys = list_shape(t, hint)
        pes = [item_key(item, shape, keys) for item in value]
        if shape == "atomic" or None in pes:
            return {prefix}
        for item, pe in zip(value, pes):
            path = prefix + (pe,)  # type: ignore[operator]
            out.add(path)
            if shape == "map":
                out |= fieldset(item, t.item(), _sub(hint, pe), path)  # type: ignore[arg-type]
        return out
    return {prefix}


def find_item(items: list[Any], pe: str, shape: str, keys: tuple[str, ...]) -> Any:
    for item in items:
        if item_key(item, shape, keys) == pe:
            return item
    return _MISSING


_MISSING = object()


# --- comparing values the way the server stores them ---------------------------------------


def same_scalar(desired: Any, live: Any, t: TypeInfo) -> bool:
    if t.is_quantity:
        return quantity.same(desired, live)
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    return bool(desired == live)


def same_values(desired: Any, live: Any, t: TypeInfo, hint: Tree | None = None) -> bool:
    """True when every value `desired` sets is what `live` holds (lists matched as the server keys them)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        if t.map_atomic and t.known:
            if set(desired) != set(live):
                return False
        # An empty list or map may come back omitted (Go's omitempty); ownership is checked separately.
        return all(same_values(value, live[key], t.field(key), _sub(hint, "f:" + key)) if key in live
                   else value in ({}, [])
                   for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        shape, keys = list_shape(t, hint)
        if shape == "set":
            have = {_json(v) for v in live}
            return all(_json(v) in have for v in desired)
        if shape == "map":
            pes = [item_key(item, shape, keys) for item in desired]
            if None not in pes:
                for item, pe in zip(desired, pes):
                    found = find_item(live, pe, shape, keys)  # type: ignore[arg-type]
                    if found is _MISSING or not same_values(item, found, t.item(), _sub(hint, pe)):  # type: ignore[arg-type]
                        return False
                return True
        if len(desired) != len(live):
            return False
        return all(same_values(d, v, t.item(), None) for d, v in zip(desired, live))
    return same_scalar(desired, live, t)


# --- the part of an object a field set covers (for diffs) ----------------------------------


def extract(value: Any, tree: Tree, t: TypeInfo, hint: Tree | None = None) -> Any:
    """The parts of `value` the paths in `tree` name; whole values at leaves, list order kept."""
    children = {k: v for k, v in tree.items() if k != "."}
    if not children:
        return value
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            pe = "f:" + key
            if pe in children:
                out[key] = extract(sub, children[pe], t.field(key), _sub(hint, pe))
        return out
    if isinstance(value, list):
        shape, keys = list_shape(t, hint or children)
        kept = []
        for item in value:
            pe = item_key(item, shape, keys)
            if pe is not None and pe in children:
                kept.append(extract(item, children[pe], t.item(), _sub(hint, pe)))
        return kept
    return value
