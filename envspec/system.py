"""What envspec never writes or deletes, whatever a spec says.

An environment's `protectedNamespaces` is the environment's own list, and a
`--set protectedNamespaces=[]` empties it. The cluster's own namespaces are
not the environment's to give away, so they are built in here: nothing is
ever written into (or deleted from) `kube-system`, `kube-public` and
`kube-node-lease`, and none of those nor `default` is ever created, changed
or deleted as a Namespace object (objects *inside* `default` are fine: a
shared database often lives there). The rule `system-namespaces` refuses a
spec that renders such an object, and apply, prune and destroy check again
before they send anything, so a hand-built plan cannot get past either.

Pure data and checks: imported by the render-time rule too, so no client here.
"""

from __future__ import annotations

from typing import Any, Iterable

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# Namespace objects envspec never creates, changes or deletes.
NEVER_TOUCHED_NAMESPACES = SYSTEM_NAMESPACES | {"default"}


def system_reason(obj: dict[str, Any]) -> str | None:
    """Why envspec must never write or delete `obj`, or None when it may."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "Namespace" and obj.get("apiVersion", "v1") == "v1":
        if meta.get("name") in NEVER_TOUCHED_NAMESPACES:
            return f"Namespace {meta.get('name')} belongs to the cluster; envspec never creates, changes or deletes it"
        return None
    if meta.get("namespace") in SYSTEM_NAMESPACES:
        return f"namespace {meta.get('namespace')} belongs to the cluster; envspec never writes or deletes objects in it"
    return None


def system_problems(objects: Iterable[dict[str, Any]]) -> list[str]:
    """One line per object envspec must leave alone, naming it."""
    out = []
    for obj in objects:
        reason = system_reason(obj)
        if reason:
            meta = obj.get("metadata") or {}
            where = "/".join(p for p in (obj.get("kind", "?"), meta.get("namespace"), meta.get("name")) if p)
            out.append(f"{where}: {reason}")
    return out
