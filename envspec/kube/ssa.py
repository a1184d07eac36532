"""One server-side apply, with errors a person can act on, and the no-op test.

The seed project turned server-side apply off after a conflict it could not
read. Here a 409 names each contested field and the manager that owns it, and
says that `--force-conflicts` takes ownership. `needs_apply` decides whether a
live object already matches what envspec wants: every field envspec sets has
the same value, and no field envspec owned earlier has been dropped from the
spec (SSA would remove those, so they need a patch too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envspec.errors import OperationError
from envspec.kube.client import FIELD_MANAGER, KubeApiError, api_body, api_message
from envspec.objects import is_subset, object_id

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube


class ApplyConflictError(OperationError):
    """Another field manager owns fields envspec sets (HTTP 409); --force-conflicts takes them over."""


class ImmutableFieldError(OperationError):
    """The API refused a change to an immutable field (a Job's template, a Service's clusterIP...)."""


def conflict_message(obj: dict[str, Any], exc: BaseException) -> str:
    body = api_body(exc)
    causes = (body.get("details") or {}).get("causes") or []
    lines = []
    for cause in causes:
        field_path = cause.get("field", "?")
        lines.append(f"{field_path} ({cause.get('message', 'conflict')})")
    if lines:
        fields = "; ".join(lines)
        return (
            f"{object_id(obj)}: apply conflict: {fields}. Another field manager owns these fields; "
            "pass --force-conflicts to take ownership, or change the other tool"
        )
    return f"{object_id(obj)}: conflict: {api_message(exc)}"


def apply_object(kube: "Kube", obj: dict[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply one object; OperationError (or ImmutableFieldError) with the API's reason."""
    try:
        return kube.apply(obj, force=force, dry_run=dry_run)
    except KubeApiError as exc:
        if exc.status == 409:
            raise ApplyConflictError(conflict_message(obj, exc)) from None
        message = api_message(exc)
        if exc.status == 422 and "immutable" in message:
            raise ImmutableFieldError(f"{object_id(obj)}: {message}") from None
        raise OperationError(f"{object_id(obj)}: apply failed: {message}") from None


def owned_paths(fields: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Leaf paths of a FieldsV1 tree (`f:` keys); list entries (`k:`, `v:`, `i:`) count as their whole list."""
    if not isinstance(fields, dict):
        return [prefix]
    children = {k: v for k, v in fields.items() if k != "."}
    if not children:
        return [prefix]
    if any(not k.startswith("f:") for k in children):
        return [prefix]
    out: list[tuple[str, ...]] = []
    for key, value in children.items():
        out.extend(owned_paths(value, prefix + (key[2:],)))
    return out


def _has_path(obj: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    return True


def dropped_fields(desired: dict[str, Any], live: dict[str, Any], manager: str = FIELD_MANAGER) -> list[str]:
    """Fields envspec's apply owns on `live` that `desired` no longer sets."""
    dropped = []
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        for path in owned_paths(entry.get("fieldsV1") or {}):
            if path and not _has_path(desired, path):
                dropped.append("." + ".".join(path))
    return dropped


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    if not is_subset(desired, live):
        return True
    return bool(dropped_fields(desired, live))
